"""Deployment plans: the ordered steps each strategy goes through, and the rollback/stop tails.

Stage durations (sandbox seconds; hooks and bakes add their own time):

    PENDING before IN_PROGRESS ........ 2      SCALE_UP (green starts) ........ 20
    RECONCILE_SERVICE ................. 3      other hook stages (PRE/POST) .... 2
    TEST_TRAFFIC_SHIFT ................ 5      each PRODUCTION_TRAFFIC_SHIFT step 5
    BAKE_TIME ......... bakeTimeInMinutes      CLEAN_UP (blue to zero) ........ 10
    canary/linear step bake ... canaryBakeTimeInMinutes / stepBakeTimeInMinutes
    ROLLING: the hook stages up to POST_SCALE_UP as above, then 10 drain (CLEAN_UP)
    rollback: ROLLBACK_REQUESTED 2, traffic flip 3 (blue still up) or 20 (blue must scale up again)
    STOP_REQUESTED -> STOPPED ......... 5      built-in Lambda invocation ...... 1
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .model import ServiceDeployment, Step

# Hook stages a ROLLING deployment passes: (sandbox choice) inferred, not documented. AWS lists the hook stages
# once for every strategy, in blue/green terms, and says pause hooks work with rolling deployments without saying
# at which stages; a rolling update has no test or production traffic shift, so it passes these three
# (ECS_BEHAVIOUR.md §3-4 leave it to the docs, which are silent). Switches: rolling_stages, rolling_shift_hooks.
ROLLING_HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP")

PENDING_SECONDS = 2.0
RECONCILE_SECONDS = 3.0
HOOK_STAGE_SECONDS = 2.0
SCALE_UP_SECONDS = 20.0
TEST_SHIFT_SECONDS = 5.0
PROD_STEP_SECONDS = 5.0
CLEAN_UP_SECONDS = 10.0
ROLLING_DRAIN_SECONDS = 10.0
ROLLBACK_REQUESTED_SECONDS = 2.0
ROLLBACK_FLIP_SECONDS = 3.0
ROLLBACK_RESCALE_SECONDS = 20.0
STOP_SECONDS = 5.0
LAMBDA_LATENCY_SECONDS = 1.0
STAGE_LIMIT_SECONDS = 24 * 3600.0


def production_steps(config: dict[str, Any]) -> list[float]:
    """Target production weights after each production step, computed in tenths of a percent."""
    strategy = config.get("strategy")
    if strategy == "CANARY":
        canary = round(float(config.get("canaryConfiguration", {}).get("canaryPercent", 5.0)) * 10)
        tenths = [canary, 1000] if canary < 1000 else [1000]
    elif strategy == "LINEAR":
        step = round(float(config.get("linearConfiguration", {}).get("stepPercent", 10.0)) * 10)
        tenths = [*range(step, 1000, step), 1000]
    else:
        tenths = [1000]
    return [t / 10 for t in tenths]


def step_bake_seconds(config: dict[str, Any]) -> float:
    """Wait between production steps (canary/linear only)."""
    if config.get("strategy") == "CANARY":
        return 60.0 * int(config.get("canaryConfiguration", {}).get("canaryBakeTimeInMinutes", 10))
    if config.get("strategy") == "LINEAR":
        return 60.0 * int(config.get("linearConfiguration", {}).get("stepBakeTimeInMinutes", 6))
    return 0.0


def _hook_stage(stage: str, seconds: float = HOOK_STAGE_SECONDS) -> list[Step]:
    return [Step("stage", stage), Step("hooks", stage), Step("wait", seconds=seconds)]


def build_plan(deployment: ServiceDeployment, switches: Mapping[str, str] | None = None) -> list[Step]:
    """The forward plan for a new deployment (`switches`: the undocumented choices that shape it, switches.py)."""
    chosen = switches or {}
    start = [Step("wait", seconds=PENDING_SECONDS), Step("status", "IN_PROGRESS")]
    plan = list(start)
    if len(deployment.sources) > 1:
        plan += _hook_stage("RECONCILE_SERVICE", RECONCILE_SECONDS)
    plan += _hook_stage("PRE_SCALE_UP")
    plan += [Step("stage", "SCALE_UP"), Step("scale_up"), Step("wait", seconds=SCALE_UP_SECONDS), Step("health")]
    plan += _hook_stage("POST_SCALE_UP")
    if deployment.strategy == "ROLLING":
        # A rolling update shifts no traffic between revisions: its hook stages end at POST_SCALE_UP.
        plan += [Step("stage", "CLEAN_UP"), Step("clean_up"), Step("wait", seconds=ROLLING_DRAIN_SECONDS)]
        return [*plan, Step("finish", "SUCCESSFUL")]
    plan += [
        Step("stage", "TEST_TRAFFIC_SHIFT"),
        Step("wait", seconds=TEST_SHIFT_SECONDS),
        Step("weights", test=100.0),
        Step("hooks", "TEST_TRAFFIC_SHIFT"),
    ]
    plan += _hook_stage("POST_TEST_TRAFFIC_SHIFT")
    plan += _production(deployment.config, chosen)
    plan += _hook_stage("POST_PRODUCTION_TRAFFIC_SHIFT")
    bake = 60.0 * int(deployment.config.get("bakeTimeInMinutes") or 0)
    plan += [Step("stage", "BAKE_TIME"), Step("wait", seconds=bake)]
    plan += [Step("stage", "CLEAN_UP"), Step("clean_up"), Step("wait", seconds=CLEAN_UP_SECONDS)]
    return [*plan, Step("finish", "SUCCESSFUL")]


def _production(config: dict[str, Any], switches: Mapping[str, str]) -> list[Step]:
    # PRE_PRODUCTION_TRAFFIC_SHIFT hooks run before every step, each time as a fresh invocation.
    early = switches.get("pre_production_stage", "production") == "production"
    plan = [Step("stage", "PRODUCTION_TRAFFIC_SHIFT")] if early else []
    weights = production_steps(config)
    bake = step_bake_seconds(config)
    for i, weight in enumerate(weights):
        plan.append(Step("hooks", "PRE_PRODUCTION_TRAFFIC_SHIFT"))
        if i == 0 and not early:  # the stage is reported only once the first step's hooks are done
            plan.append(Step("stage", "PRODUCTION_TRAFFIC_SHIFT"))
        plan += [Step("wait", seconds=PROD_STEP_SECONDS), Step("weights", prod=weight)]
        plan.append(Step("hooks", "PRODUCTION_TRAFFIC_SHIFT"))
        if i < len(weights) - 1:
            plan += _step_bake(bake, switches.get("step_bake_stage", "production"))
    return plan


def _step_bake(seconds: float, reported: str) -> list[Step]:
    if reported == "bake_time":
        return [Step("stage", "BAKE_TIME"), Step("wait", seconds=seconds), Step("stage", "PRODUCTION_TRAFFIC_SHIFT")]
    return [Step("wait", seconds=seconds)]


def rollback_plan(deployment: ServiceDeployment, requested: bool) -> list[Step]:
    """Steps from the start of a rollback to ROLLBACK_SUCCESSFUL."""
    plan: list[Step] = []
    if requested:
        plan += [Step("wait", seconds=ROLLBACK_REQUESTED_SECONDS), Step("status", "ROLLBACK_IN_PROGRESS")]
    target = deployment.target
    shifted_test, shifted_prod = target.test_weight > 0, target.prod_weight > 0
    if deployment.strategy != "ROLLING":
        plan.append(Step("weights", test=0.0, prod=0.0))
        # Only the traffic-shift hooks run again, with the reversed weights.
        if shifted_test:
            plan.append(Step("rollback_hooks", "TEST_TRAFFIC_SHIFT"))
        if shifted_prod:
            plan.append(Step("rollback_hooks", "PRODUCTION_TRAFFIC_SHIFT"))
    blue_up = bool(deployment.sources) and deployment.sources[0].running >= deployment.desired
    seconds = ROLLBACK_FLIP_SECONDS if blue_up else ROLLBACK_RESCALE_SECONDS
    plan += [Step("restore"), Step("wait", seconds=seconds), Step("finish", "ROLLBACK_SUCCESSFUL")]
    return plan


def stop_plan() -> list[Step]:
    """Steps from STOP_REQUESTED to STOPPED."""
    return [Step("wait", seconds=STOP_SECONDS), Step("finish", "STOPPED")]
