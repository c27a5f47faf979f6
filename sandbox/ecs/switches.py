"""Named switches for what AWS leaves undocumented: one value per plausible behaviour of real ECS.

Set at start (`deploybot sandbox ecs --switch name=value`, `start(switches=…)`) or at run time
(`POST /_sandbox/switch {name, value}`); `POST /_sandbox/reset` puts back the values the sandbox started with.
The bot is tested under every value (ECS_BEHAVIOUR.md names the switch covering each undocumented choice).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .errors import invalid

# name -> its values, the default first
CHOICES: dict[str, tuple[str, ...]] = {
    # DeploymentLifecycleHook.hookDetails "is not used for PAUSE hooks": ECS may drop it, keep it, or refuse it.
    "pause_hook_details": ("drop", "echo", "reject"),
    # Service.currentServiceDeployment is "the ARN of the current service deployment"; whether UpdateService's
    # response already names the deployment it started is not documented: it does, it is absent, or it still
    # names the deployment that was current before.
    "update_service_current_deployment": ("new", "absent", "previous"),
    # lifecycleStage while the first production step's PRE_PRODUCTION_TRAFFIC_SHIFT hooks run: already
    # PRODUCTION_TRAFFIC_SHIFT, or still the stage before it (POST_TEST_TRAFFIC_SHIFT).
    "pre_production_stage": ("production", "previous"),
    # lifecycleStage while a canary/linear deployment bakes between two production steps.
    "step_bake_stage": ("production", "bake_time"),
    # lifecycleHookDetails: the current stage invocation's hooks only, or every hook the deployment ran so far.
    "hook_details_scope": ("current", "all"),
    # statusReason of a deployment stopped because a newer one started: wording that names the newer deployment,
    # other wording (that does not), or none.
    "supersede_reason": ("names_new", "other", "absent"),
    # updatedAt: moves only when the deployment changes, or on every DescribeServiceDeployments.
    "updated_at": ("on_change", "every_describe"),
    # lifecycleStage of a ROLLING deployment: its stages (PRE_SCALE_UP … CLEAN_UP), or never reported.
    "rolling_stages": ("reported", "absent"),
    # A hook on a ROLLING configuration at a stage a rolling update never passes: refused, or kept and never run.
    "rolling_shift_hooks": ("reject", "ignore"),
}
SUPERSEDE_REASONS = {
    "names_new": "deployment stopped: a new service deployment was started",
    "other": "deployment stopped by UpdateService",
    "absent": None,
}


def alternatives() -> list[tuple[str, str]]:
    """Every value but the default, one switch at a time: the settings the bot's scenario tests also run under."""
    return [(name, value) for name, values in CHOICES.items() for value in values[1:]]


class SwitchError(ValueError):
    """An unknown switch or a value it does not have."""


def check(name: str, value: str) -> None:
    """Raise SwitchError unless `value` is one of the switch's values."""
    if name not in CHOICES:
        raise SwitchError(f"unknown switch {name!r}; switches: {', '.join(sorted(CHOICES))}")
    if value not in CHOICES[name]:
        raise SwitchError(f"switch {name} takes one of {', '.join(CHOICES[name])}; got {value!r}")


def parse_flag(text: str) -> tuple[str, str]:
    """`name=value` from the command line, checked."""
    name, sep, value = text.partition("=")
    if not sep:
        raise SwitchError(f"expected name=value, got {text!r}")
    check(name.strip(), value.strip())
    return name.strip(), value.strip()


class Switches:
    """The current value of every switch (thread-safe), and the values the sandbox started with."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        for name, value in (initial or {}).items():
            check(name, value)
        self._initial = {name: values[0] for name, values in CHOICES.items()} | dict(initial or {})
        self._values = dict(self._initial)
        self._lock = threading.Lock()

    def get(self, name: str) -> str:
        """The switch's current value."""
        with self._lock:
            return self._values[name]

    def set(self, name: str, value: str) -> None:
        """Change one switch."""
        check(name, value)
        with self._lock:
            self._values[name] = value

    def reset(self) -> None:
        """Back to the values the sandbox started with."""
        with self._lock:
            self._values = dict(self._initial)

    def as_dict(self) -> dict[str, str]:
        """Every switch and its value."""
        with self._lock:
            return dict(self._values)


def pause_hook_details(config: dict[str, Any], mode: str) -> dict[str, Any]:
    """The configuration as ECS keeps it under `pause_hook_details`: hookDetails dropped, kept, or refused."""
    hooks = config.get("lifecycleHooks")
    if not hooks or mode == "echo":
        return config
    kept = []
    for i, hook in enumerate(hooks):
        if hook.get("targetType") == "PAUSE" and "hookDetails" in hook:
            if mode == "reject":
                raise invalid(
                    f"deploymentConfiguration.lifecycleHooks[{i}].hookDetails: hookDetails is not supported "
                    "for lifecycle hooks of targetType PAUSE"
                )
            kept.append({k: v for k, v in hook.items() if k != "hookDetails"})
        else:
            kept.append(hook)
    return {**config, "lifecycleHooks": kept}
