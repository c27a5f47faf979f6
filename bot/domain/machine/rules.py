"""Pure rules the state machine applies: production steps, stage order, hook stages, rollback causes, outcomes."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

from bot.domain.enums import (
    DecisionKind,
    DeploymentStatus,
    EcsStatus,
    HookStage,
    HookStatus,
    HookTargetType,
    LifecycleStage,
    RollbackCause,
    Strategy,
)
from bot.domain.snapshot import Snapshot

STAGE_ORDER: tuple[LifecycleStage, ...] = tuple(LifecycleStage)  # declared in ECS_BEHAVIOUR.md §4 order
ROLLBACK_STATUSES = frozenset(
    {
        EcsStatus.ROLLBACK_REQUESTED,
        EcsStatus.ROLLBACK_IN_PROGRESS,
        EcsStatus.ROLLBACK_SUCCESSFUL,
        EcsStatus.ROLLBACK_FAILED,
    }
)
FINAL_HOOK_STATUSES = frozenset(s for s in HookStatus if s.is_final)
DEFAULT_STEP = {Strategy.CANARY: 5.0, Strategy.LINEAR: 10.0}  # ECS's defaults when the config has none
SUPERSEDED_REASON = re.compile(r"\b(new|newer|another)\s+(service\s+)?deployment|supersed|replaced", re.IGNORECASE)
# hook id -> (what a person decided, who): what the machine needs to attribute a rollback
DecisionsByHook = Mapping[str, tuple[DecisionKind, str]]


def tenths(value: float) -> int:
    """A percentage in integer tenths, the unit ECS computes steps in."""
    return round(value * 10)


def production_steps(strategy: Strategy | str | None, step_percent: float | None) -> list[float]:
    """Production weights after each step: BLUE_GREEN [100], CANARY [p, 100], LINEAR s, 2s, …, 100; ROLLING []."""
    if strategy == Strategy.BLUE_GREEN:
        return [100.0]
    if strategy not in (Strategy.CANARY, Strategy.LINEAR):
        return []
    step = tenths(step_percent if step_percent is not None else DEFAULT_STEP[Strategy(strategy)])
    if step <= 0 or step >= 1000:
        return [100.0]
    if strategy == Strategy.CANARY:
        return [step / 10, 100.0]
    count = math.ceil(1000 / step)
    return [min(k * step, 1000) / 10 for k in range(1, count + 1)]


def step_position(strategy: Strategy | str | None, step_percent: float | None, weight: float) -> tuple[int, int]:
    """(k, n): which production step `weight` is; an unexpected weight counts the steps it has reached."""
    steps = [tenths(s) for s in production_steps(strategy, step_percent)] or [1000]
    target = tenths(weight)
    if target in steps:
        return steps.index(target) + 1, len(steps)
    return max(1, sum(1 for s in steps if s <= target)), len(steps)


def next_step(strategy: Strategy | str | None, step_percent: float | None, weight: float | None) -> dict[str, Any]:
    """The production step that comes after `weight`: {k, n, percent}."""
    steps = production_steps(strategy, step_percent) or [100.0]
    current = tenths(weight or 0.0)
    for k, percent in enumerate(steps, start=1):
        if tenths(percent) > current:
            return {"k": k, "n": len(steps), "percent": percent}
    return {"k": len(steps), "n": len(steps), "percent": steps[-1]}


def stages_passed(seen: tuple[LifecycleStage, ...], stage: LifecycleStage | None) -> list[LifecycleStage]:
    """Stages that ran entirely between two polls: after the furthest seen and before `stage` (None = to the end).

    RECONCILE_SERVICE only runs when several revisions are active at the start, so a poller cannot tell whether
    it was skipped or never ran: it is reported only when seen, never as passed.
    """
    furthest = max((STAGE_ORDER.index(s) for s in seen), default=-1)
    end = len(STAGE_ORDER) if stage is None else STAGE_ORDER.index(stage)
    return [s for s in STAGE_ORDER[furthest + 1 : end] if s is not LifecycleStage.RECONCILE_SERVICE and s not in seen]


# Pause stages ECS runs more than once in a deployment (before every production step); the others run once.
REPEATING_PAUSE_STAGES = frozenset({HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT})


def _reported_hook_stage(target_type: str | None, stage: LifecycleStage | None) -> str | None:
    if stage is None:
        return None
    if target_type == HookTargetType.PAUSE and stage is LifecycleStage.PRODUCTION_TRAFFIC_SHIFT:
        return HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT.value
    return stage.value


def hook_stage(
    target_type: str | None,
    stage: LifecycleStage | None,
    configured: Sequence[str] = (),
    used: Collection[str] = (),
) -> str | None:
    """The hook stage a hook runs at: from the lifecycle stage reported when it was first seen and the configuration.

    ECS's hook details carry no stage. PAUSE hooks are not allowed at PRODUCTION_TRAFFIC_SHIFT, so a pause seen
    there belongs to PRE_PRODUCTION_TRAFFIC_SHIFT (which ECS never reports as a stage of its own). A pause must be at
    one of the `configured` pause stages, and not at a run-once stage another pause of this deployment (`used`)
    already took: when the reported stage is not such a stage, the only candidate left is the answer; with several
    left, None (say less rather than name a stage that may be wrong).
    """
    reported = _reported_hook_stage(target_type, stage)
    if target_type != HookTargetType.PAUSE or not configured:
        return reported
    candidates = [s for s in dict.fromkeys(configured) if s in REPEATING_PAUSE_STAGES or s not in used]
    if reported in candidates:
        return reported
    return candidates[0] if len(candidates) == 1 else None


def as_reported(snapshot: Snapshot, strategy: Strategy, tracked_weight: float | None) -> Snapshot:
    """The snapshot with a step bake read as the production shift it belongs to.

    AWS does not document what `lifecycleStage` reads while a canary or linear deployment bakes between two
    production steps: PRODUCTION_TRAFFIC_SHIFT, or BAKE_TIME. BAKE_TIME before production traffic reached 100 %
    is such a step bake, never the final bake (whose checklist, thread line and end would then be false).
    """
    if strategy not in (Strategy.CANARY, Strategy.LINEAR) or snapshot.lifecycle_stage is not LifecycleStage.BAKE_TIME:
        return snapshot
    reported = snapshot.target.production_weight if snapshot.target is not None else None
    weight = reported if reported is not None else tracked_weight
    if weight is None or tenths(weight) >= 1000 or rollback_active(snapshot):
        return snapshot
    return replace(snapshot, lifecycle_stage=LifecycleStage.PRODUCTION_TRAFFIC_SHIFT)


def rollback_active(snapshot: Snapshot) -> bool:
    """True once ECS is rolling the deployment back (or has)."""
    return snapshot.rollback is not None or snapshot.status in ROLLBACK_STATUSES


def _user_cause(hooks: Mapping[str, Mapping[str, Any]], decisions: DecisionsByHook, stopped_by: str | None) -> Any:
    if stopped_by:
        return {"cause": RollbackCause.USER}, stopped_by
    for hook_id, (kind, user) in decisions.items():
        if kind is DecisionKind.ROLLBACK:
            return {"cause": RollbackCause.USER, "hook_id": hook_id, "stage": hooks.get(hook_id, {}).get("stage")}, user
    return None


def _hook_cause(
    hooks: Mapping[str, Mapping[str, Any]], status: HookStatus, cause: RollbackCause
) -> dict[str, Any] | None:
    for hook_id, info in hooks.items():
        # A FAILED we only inferred (the hook vanished during a rollback) is a consequence, not evidence of a cause;
        # a TIMED_OUT inferred from expiresAt is.
        if info.get("status") == status and not (status is HookStatus.FAILED and info.get("inferred")):
            keys = ("stage", "target_type", "target_arn", "timeout_action")
            return {"cause": cause, "hook_id": hook_id, **{k: info.get(k) for k in keys}}
    return None


def _monitor_cause(snapshot: Snapshot) -> dict[str, Any] | None:
    alarms = snapshot.alarms
    if alarms and (alarms.status == "TRIGGERED" or alarms.triggered_alarm_names):
        names = list(alarms.triggered_alarm_names or alarms.alarm_names)
        return {"cause": RollbackCause.ALARM, "alarm_names": names, "alarm_name": names[0] if names else None}
    breaker = snapshot.circuit_breaker
    if breaker and breaker.status == "TRIGGERED":
        return {
            "cause": RollbackCause.CIRCUIT_BREAKER,
            "failure_count": breaker.failure_count,
            "threshold": breaker.threshold,
        }
    return None


def _text_cause(text: str) -> RollbackCause:
    # Last resort when ECS gave no structured hint: its wording.
    lowered = text.lower()
    for needle, cause in (
        ("alarm", RollbackCause.ALARM),
        ("circuit", RollbackCause.CIRCUIT_BREAKER),
        ("timed out", RollbackCause.TIMEOUT),
        ("timeout", RollbackCause.TIMEOUT),
        ("hook", RollbackCause.HOOK_FAILURE),
    ):
        if needle in lowered:
            return cause
    return RollbackCause.ECS


def classify_rollback(
    snapshot: Snapshot, hooks: Mapping[str, Mapping[str, Any]], decisions: DecisionsByHook, stopped_by: str | None
) -> tuple[dict[str, Any], str | None]:
    """Why ECS rolled back (or stopped): user, timeout, alarm, circuit_breaker, hook_failure or ecs; plus the actor."""
    user = _user_cause(hooks, decisions, stopped_by)
    if user is not None:
        return user[0], user[1]
    found = (
        _hook_cause(hooks, HookStatus.TIMED_OUT, RollbackCause.TIMEOUT)
        or _monitor_cause(snapshot)
        or _hook_cause(hooks, HookStatus.FAILED, RollbackCause.HOOK_FAILURE)
    )
    if found is None:
        text = " ".join(t for t in (snapshot.status_reason, snapshot.rollback and snapshot.rollback.reason) if t)
        found = {"cause": _text_cause(text)}
    return found, None


def is_superseded(snapshot: Snapshot, superseded_by: str | None) -> bool:
    """A STOPPED deployment that a newer one replaced (the caller knows, or ECS's statusReason says so)."""
    if snapshot.status is not EcsStatus.STOPPED:
        return False
    return bool(superseded_by) or bool(SUPERSEDED_REASON.search(snapshot.status_reason or ""))


def outcome(snapshot: Snapshot, superseded_by: str | None) -> DeploymentStatus | None:
    """Our final status for a terminal ECS status, None while ECS is still working."""
    mapping = {
        EcsStatus.SUCCESSFUL: DeploymentStatus.SUCCEEDED,
        EcsStatus.ROLLBACK_SUCCESSFUL: DeploymentStatus.ROLLED_BACK,
        EcsStatus.ROLLBACK_FAILED: DeploymentStatus.ROLLBACK_FAILED,
        EcsStatus.STOPPED: DeploymentStatus.STOPPED,
    }
    status = mapping.get(snapshot.status)
    if status is DeploymentStatus.STOPPED and is_superseded(snapshot, superseded_by):
        return DeploymentStatus.SUPERSEDED
    return status
