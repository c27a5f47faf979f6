"""Semantic checks ECS applies to a deploymentConfiguration beyond the model's shape.

Every refusal is InvalidParameterException with a message naming the offending field.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid
from .plan import ROLLING_HOOK_STAGES

PAUSE_FORBIDDEN = ("TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT")
MAX_HOOKS_PER_TYPE = 10
SHIFTING = ("BLUE_GREEN", "CANARY", "LINEAR")
ADVANCED_REQUIRED = ("alternateTargetGroupArn", "productionListenerRule", "roleArn")
FIELD = "deploymentConfiguration"


def _tenths(value: float) -> bool:
    return abs(value * 10 - round(value * 10)) < 1e-6


def _check_percent(value: Any, low: float, high: float, path: str) -> None:
    if not low <= float(value) <= high or not _tenths(float(value)):
        raise invalid(f"{path} must be a multiple of 0.1 between {low} and {high}; got {value}")


def _check_minutes(value: Any, low: int, high: int, path: str) -> None:
    if not low <= int(value) <= high:
        raise invalid(f"{path} must be between {low} and {high} minutes; got {value}")


def validate_deployment_configuration(
    config: dict[str, Any],
    headless: bool,
    load_balancers: list[dict[str, Any]] | None = None,
    strict_rolling: bool = True,
) -> None:
    """Refuse what ECS refuses for this configuration on a service with (or without) load balancing."""
    strategy = config.get("strategy") or "ROLLING"
    if strategy in SHIFTING:
        _validate_advanced(load_balancers or [], strategy)
    for key, wanted in (("canaryConfiguration", "CANARY"), ("linearConfiguration", "LINEAR")):
        if key in config and strategy != wanted:
            raise invalid(f"{FIELD}.{key} is only valid with strategy {wanted} (strategy is {strategy})")
    canary = config.get("canaryConfiguration") or {}
    if "canaryPercent" in canary:
        _check_percent(canary["canaryPercent"], 0.1, 100.0, f"{FIELD}.canaryConfiguration.canaryPercent")
    if "canaryBakeTimeInMinutes" in canary:
        _check_minutes(
            canary["canaryBakeTimeInMinutes"], 0, 1440, f"{FIELD}.canaryConfiguration.canaryBakeTimeInMinutes"
        )
    linear = config.get("linearConfiguration") or {}
    if "stepPercent" in linear:
        _check_percent(linear["stepPercent"], 3.0, 100.0, f"{FIELD}.linearConfiguration.stepPercent")
    if "stepBakeTimeInMinutes" in linear:
        _check_minutes(linear["stepBakeTimeInMinutes"], 0, 1440, f"{FIELD}.linearConfiguration.stepBakeTimeInMinutes")
    if config.get("bakeTimeInMinutes") is not None:
        _check_minutes(config["bakeTimeInMinutes"], 0, 1440, f"{FIELD}.bakeTimeInMinutes")
    if strategy in ("CANARY", "LINEAR") and headless:
        raise invalid(
            f"{FIELD}.strategy {strategy} needs a load balancer or Service Connect; "
            "a service without either supports BLUE_GREEN only"
        )
    _validate_hooks(config.get("lifecycleHooks") or [], strategy, strict_rolling)


def _validate_advanced(load_balancers: list[dict[str, Any]], strategy: str) -> None:
    # BLUE_GREEN, CANARY and LINEAR shift traffic between two target groups through listener rules: each load
    # balancer must name the alternate target group, the production listener rule and the role ECS uses.
    for i, lb in enumerate(load_balancers):
        advanced = lb.get("advancedConfiguration") or {}
        missing = [f for f in ADVANCED_REQUIRED if not advanced.get(f)]
        if missing:
            raise invalid(
                f"loadBalancers[{i}].advancedConfiguration.{missing[0]} is required when the deployment strategy "
                f"is {strategy}"
            )
        if advanced["alternateTargetGroupArn"] == lb.get("targetGroupArn"):
            raise invalid(
                f"loadBalancers[{i}].advancedConfiguration.alternateTargetGroupArn must differ from targetGroupArn"
            )


def _validate_hooks(hooks: list[dict[str, Any]], strategy: str, strict_rolling: bool) -> None:
    counts = {"PAUSE": 0, "AWS_LAMBDA": 0}
    for i, hook in enumerate(hooks):
        path = f"{FIELD}.lifecycleHooks[{i}]"
        kind = hook.get("targetType") or "AWS_LAMBDA"
        counts[kind] += 1
        if not hook.get("lifecycleStages"):
            raise invalid(f"{path}.lifecycleStages must name at least one stage")
        if strategy == "ROLLING" and strict_rolling:  # switch rolling_shift_hooks
            _validate_rolling_stages(hook["lifecycleStages"], path)
        if kind == "PAUSE":
            _validate_pause(hook, path)
        else:
            _validate_lambda(hook, path)
    for kind, count in counts.items():
        if count > MAX_HOOKS_PER_TYPE:
            raise invalid(f"{FIELD}.lifecycleHooks: at most {MAX_HOOKS_PER_TYPE} {kind} hooks; got {count}")


def _validate_rolling_stages(stages: list[str], path: str) -> None:
    # (sandbox choice) ECS documents no answer for a hook at a stage a rolling update never passes; refusing is
    # the strict reading (ECS_BEHAVIOUR.md §4).
    for stage in stages:
        if stage not in ROLLING_HOOK_STAGES:
            raise invalid(
                f"{path}.lifecycleStages: {stage} is not a stage of a ROLLING deployment "
                f"(valid: {', '.join(ROLLING_HOOK_STAGES)})"
            )


def _validate_pause(hook: dict[str, Any], path: str) -> None:
    for key in ("hookTargetArn", "roleArn"):
        if hook.get(key):
            raise invalid(f"{path}.{key} must not be set for a PAUSE hook")
    for stage in hook["lifecycleStages"]:
        if stage in PAUSE_FORBIDDEN:
            raise invalid(f"{path}.lifecycleStages: a PAUSE hook is not allowed at {stage}")
    timeout = (hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes")
    if timeout is not None:
        _check_minutes(timeout, 1, 20160, f"{path}.timeoutConfiguration.timeoutInMinutes")


def _validate_lambda(hook: dict[str, Any], path: str) -> None:
    for key in ("hookTargetArn", "roleArn"):
        if not hook.get(key):
            raise invalid(f"{path}.{key} is required for an AWS_LAMBDA hook")
    timeout = (hook.get("timeoutConfiguration") or {}).get("timeoutInMinutes")
    if timeout is not None:
        _check_minutes(timeout, 1, 1440, f"{path}.timeoutConfiguration.timeoutInMinutes")
