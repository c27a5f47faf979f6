"""Pure builders for the ECS requests that change things: task-definition copies and deployment configurations."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import botocore.session

from bot.domain.durations import pause_minutes, whole_minutes
from bot.domain.enums import HookTargetType, Strategy
from bot.domain.snapshot import StartSpec

ADVANCED = frozenset({Strategy.BLUE_GREEN, Strategy.CANARY, Strategy.LINEAR})


@lru_cache(maxsize=1)
def register_task_definition_fields() -> frozenset[str]:
    """Members of RegisterTaskDefinition's input shape, from botocore's ECS model."""
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None  # every ECS operation has an input shape
    return frozenset(shape.members)


def replace_image(current: str, new: str) -> str:
    """The image to deploy: `:tag` or `@digest` keeps the current repository, anything else is a full URI."""
    if not new.startswith((":", "@")):
        return new
    return image_repository(current) + new


def image_repository(image: str) -> str:
    """The repository part of an image URI (without tag or digest; a registry port is kept)."""
    repository = image.split("@", 1)[0]
    name, sep, tag = repository.rpartition(":")
    # A colon followed by a slash belongs to a registry port (host:5000/repo), not to a tag.
    return name if sep and "/" not in tag else repository


def container_image(task_definition: Mapping[str, Any], container: str) -> str:
    """The image of the named container; KeyError naming the containers that exist."""
    names = []
    for item in task_definition.get("containerDefinitions") or ():
        if item.get("name") == container:
            return str(item.get("image", ""))
        names.append(str(item.get("name")))
    raise KeyError(f"container `{container}` is not in {task_definition.get('family')} (has: {', '.join(names)})")


def register_params(
    task_definition: Mapping[str, Any], tags: list[Mapping[str, str]], container: str, image: str
) -> dict[str, Any]:
    """RegisterTaskDefinition parameters copying `task_definition` with `container` running `image`."""
    accepted = register_task_definition_fields()
    params = {k: copy.deepcopy(v) for k, v in task_definition.items() if k in accepted and v is not None}
    current = container_image(task_definition, container)
    for item in params["containerDefinitions"]:
        if item.get("name") == container:
            item["image"] = replace_image(current, image)
    if tags:
        params["tags"] = [dict(t) for t in tags]
    return params


def is_pause(hook: Mapping[str, Any]) -> bool:
    """True for a PAUSE hook (a hook without targetType is AWS_LAMBDA, ECS's default)."""
    return hook.get("targetType") == HookTargetType.PAUSE


def pause_hook(spec: StartSpec) -> dict[str, Any] | None:
    """Our PAUSE hook for the spec's approval stages, or None when nothing needs approval."""
    if not spec.approval_stages:  # rolling updates pause too, at their scale-up stages (policy checks which)
        return None
    minutes = pause_minutes(spec.approval_timeout)
    return {
        "targetType": "PAUSE",
        "lifecycleStages": [str(s) for s in spec.approval_stages],
        "timeoutConfiguration": {"timeoutInMinutes": minutes, "action": str(spec.timeout_action)},
    }


def deployment_configuration(existing: Mapping[str, Any], spec: StartSpec) -> dict[str, Any]:
    """The service's configuration with the spec's strategy, bakes and pauses (UpdateService replaces it whole)."""
    config = copy.deepcopy(dict(existing))
    config["strategy"] = str(spec.strategy)
    config.pop("canaryConfiguration", None)
    config.pop("linearConfiguration", None)
    if spec.strategy in ADVANCED:
        config["bakeTimeInMinutes"] = whole_minutes(spec.bake)
    if spec.strategy is Strategy.CANARY:
        config["canaryConfiguration"] = {
            "canaryPercent": spec.canary_percent,
            "canaryBakeTimeInMinutes": whole_minutes(spec.canary_bake),
        }
    elif spec.strategy is Strategy.LINEAR:
        config["linearConfiguration"] = {
            "stepPercent": spec.linear_step_percent,
            "stepBakeTimeInMinutes": whole_minutes(spec.step_bake),
        }
    # DeployBot owns every PAUSE hook of a catalog service: PAUSE hooks carry nothing to tell whose they are (no
    # ARN, and ECS does not use hookDetails for them), so each deployment writes exactly the pauses it asks for.
    hooks = [h for h in config.get("lifecycleHooks") or () if not is_pause(h)]
    ours = pause_hook(spec)
    if ours is not None:
        hooks.append(ours)
    if hooks or "lifecycleHooks" in config:
        config["lifecycleHooks"] = hooks
    return config


# ECS accepts at most this many hooks of each type (PAUSE, AWS_LAMBDA) in a service's configuration.
MAX_HOOKS_PER_TYPE = 10


def _stages(hook: Mapping[str, Any]) -> str:
    return ", ".join(str(s) for s in hook.get("lifecycleStages") or ()) or "no stage"


def hook_findings(existing: Mapping[str, Any], spec: StartSpec) -> tuple[list[str], list[str]]:
    """What `deploybot check` says of a service's hooks: (notes, problems) for the pauses and limits."""
    hooks = list(existing.get("lifecycleHooks") or ())
    pauses = [h for h in hooks if is_pause(h)]
    lambdas = len(hooks) - len(pauses)
    notes: list[str] = []
    problems: list[str] = []
    ours = pause_hook(spec)
    same = (
        ours is not None
        and len(pauses) == 1
        and set(pauses[0].get("lifecycleStages") or ()) == set(ours["lifecycleStages"])
    )
    if pauses and not same:
        found = "; ".join(f"PAUSE at {_stages(h)}" for h in pauses)
        instead = f"a pause at {_stages(ours)}" if ours else "none (the catalog asks for no approval)"
        notes.append(
            f"its ECS configuration has pauses the catalog does not declare ({found}): these will be "
            f"replaced by {instead} on its next deployment through DeployBot"
        )
    for count, kind in ((lambdas, "Lambda"), (len(pauses), "PAUSE")):
        if count > MAX_HOOKS_PER_TYPE:
            problems.append(f"{count} {kind} hooks in its ECS configuration; ECS allows at most {MAX_HOOKS_PER_TYPE}")
    return notes, problems
