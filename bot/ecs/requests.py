"""Pure builders for the ECS requests that change things: task-definition copies and deployment configurations."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import botocore.session

from bot.domain.durations import pause_minutes, whole_minutes
from bot.domain.enums import Strategy
from bot.domain.snapshot import StartSpec

# Our PAUSE hooks carry this in `hookDetails` so the next deployment replaces them instead of adding more
# (ECS allows 10 pause hooks per service, and PAUSE hooks have no ARN to recognise them by).
HOOK_MARKER_KEY = "deploybot"
HOOK_MARKER = {HOOK_MARKER_KEY: "approval"}
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


def is_our_hook(hook: Mapping[str, Any]) -> bool:
    """True for a PAUSE hook a previous DeployBot deployment added."""
    details = hook.get("hookDetails")
    return hook.get("targetType") == "PAUSE" and isinstance(details, Mapping) and HOOK_MARKER_KEY in details


def pause_hook(spec: StartSpec) -> dict[str, Any] | None:
    """Our PAUSE hook for the spec's approval stages, or None when nothing needs approval."""
    if spec.strategy not in ADVANCED or not spec.approval_stages:
        return None
    minutes = pause_minutes(spec.approval_timeout)
    return {
        "targetType": "PAUSE",
        "lifecycleStages": [str(s) for s in spec.approval_stages],
        "hookDetails": dict(HOOK_MARKER),
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
    hooks = [h for h in config.get("lifecycleHooks") or () if not is_our_hook(h)]
    ours = pause_hook(spec)
    if ours is not None:
        hooks.append(ours)
    if hooks or "lifecycleHooks" in config:
        config["lifecycleHooks"] = hooks
    return config
