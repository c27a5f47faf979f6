"""The deployment state machine (pure): (stored state, ECS snapshot, now) → (new state, events).

It is level-triggered and idempotent: every event has a natural key derived from what ECS reported, and the
state remembers the keys it emitted, so feeding the same snapshot twice (or two reconcilers feeding it once
each) yields no new event. It never assumes it saw every stage, and tolerates a missing lifecycleStage,
missing weights, and hooks that vanish from `lifecycleHookDetails` (their outcome is then inferred).
During a rollback no stage events are emitted: ECS has no rollback stage and may keep reporting the last one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain.enums import (
    DecisionKind,
    DeploymentStatus,
    EcsStatus,
    EventKind,
    HookStage,
    HookStatus,
    HookTargetType,
    LifecycleStage,
    RollbackCause,
    Strategy,
)
from bot.domain.machine.rules import (
    FINAL_HOOK_STATUSES,
    STAGE_ORDER,
    DecisionsByHook,
    as_reported,
    classify_rollback,
    hook_stage,
    next_step,
    outcome,
    production_steps,
    rollback_active,
    stages_passed,
    step_position,
    tenths,
)
from bot.domain.machine.state import Event, Tracked
from bot.domain.snapshot import HookDetail, Snapshot, ecs_ended, ecs_started

__all__ = ["Event", "Tracked", "advance", "production_steps"]

OUTCOME_WORDS: dict[str, str] = {
    HookStatus.SUCCEEDED: "succeeded",
    HookStatus.FAILED: "failed",
    HookStatus.TIMED_OUT: "timed_out",
}
DECISION_FOR: dict[str, DecisionKind] = {
    HookStatus.SUCCEEDED: DecisionKind.APPROVE,
    HookStatus.FAILED: DecisionKind.ROLLBACK,
}
STEPPED = (Strategy.CANARY, Strategy.LINEAR)
PAUSE = HookTargetType.PAUSE


@dataclass(frozen=True)
class _Pass:
    """The inputs of one `advance` call plus what every rule needs to share."""

    tracked: Tracked
    snap: Snapshot
    now: datetime
    decisions: DecisionsByHook
    strategy: Strategy
    step_percent: float | None
    rolling_back: bool
    hooks: Mapping[str, dict[str, Any]]  # merged view: hookId -> info with "status" and "inferred"
    stopped_by: str | None
    superseded_by: str | None

    @property
    def advanced(self) -> bool:
        return self.strategy is not Strategy.ROLLING

    @property
    def shifts(self) -> bool:
        """Traffic moves between revisions (not ROLLING, not a headless service)."""
        return self.advanced and not self.tracked.headless

    @property
    def since(self) -> datetime | None:
        # ECS bumps updatedAt when a stage or weight changes: its best estimate of when a bake began. ECS's clock
        # only, never ours (docs/ARCHITECTURE.md, "Clocks"): without updatedAt the bake has no known end.
        return self.snap.updated_at


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _inferred(info: Mapping[str, Any], decision: tuple[DecisionKind, str] | None, rb: bool, now: datetime) -> str:
    # The hook left lifecycleHookDetails before we saw its result: reason from what we know.
    if decision is not None:
        return HookStatus.SUCCEEDED if decision[0] is DecisionKind.APPROVE else HookStatus.FAILED
    expires = info.get("expires_at")
    if expires and now >= datetime.fromisoformat(expires):
        return HookStatus.TIMED_OUT
    return HookStatus.FAILED if rb else HookStatus.SUCCEEDED


def _hook_info(
    hook: HookDetail, known: Mapping[str, Any] | None, stage: LifecycleStage | None, where: tuple[Any, Any]
) -> dict[str, Any]:
    info = dict(known or {})
    if "stage" not in info or info["stage"] is None:
        info["stage"] = hook_stage(hook.target_type, stage, *where)
    info.update(
        status=hook.status,
        target_type=hook.target_type,
        target_arn=hook.target_arn,
        expires_at=_iso(hook.expires_at) or info.get("expires_at"),
        timeout_action=hook.timeout_action,
        inferred=False,
    )
    return info


def _merge_hooks(
    tracked: Tracked, snap: Snapshot, now: datetime, decisions: DecisionsByHook, rolling_back: bool
) -> dict[str, dict[str, Any]]:
    merged = {hid: {**tracked.hook_info.get(hid, {}), "status": st} for hid, st in tracked.hooks.items()}
    stage = snap.lifecycle_stage or tracked.lifecycle_stage
    configured = snap.pause_stages or tracked.pause_stages  # what ECS says it runs, else what we asked for
    present = set()
    for hook in snap.hooks:
        present.add(hook.hook_id)
        used = {str(i.get("stage")) for h, i in merged.items() if h != hook.hook_id and i.get("target_type") == PAUSE}
        merged[hook.hook_id] = _hook_info(hook, merged.get(hook.hook_id), stage, (configured, used))
    for hid, info in merged.items():
        if hid not in present and info.get("status") not in FINAL_HOOK_STATUSES:
            info.update(status=_inferred(info, decisions.get(hid), rolling_back, now), inferred=True)
    return merged


def _resolutions(p: _Pass) -> list[Event]:
    events = []
    for hid, info in p.hooks.items():
        status = str(info.get("status"))
        if status not in FINAL_HOOK_STATUSES:
            continue
        decision = p.decisions.get(hid)
        ours = decision is not None and DECISION_FOR.get(status) is decision[0]
        detail = {
            "hook_id": hid,
            "stage": info.get("stage"),
            "target_type": info.get("target_type"),
            "target_arn": info.get("target_arn"),
            "status": status,
            "outcome": OUTCOME_WORDS[status],
            "inferred": bool(info.get("inferred")),
            "decision": str(decision[0]) if ours and decision else None,
            "resolved_by": decision[1] if ours and decision else None,
        }
        actor = decision[1] if ours and decision else None
        events.append(Event(EventKind.HOOK_RESOLVED, f"hook:{hid}:resolved", info.get("stage"), detail, actor))
    return events


def _stage_events(p: _Pass) -> tuple[list[Event], tuple[LifecycleStage, ...]]:
    seen = p.tracked.stages_seen
    stage = p.snap.lifecycle_stage
    succeeded = p.snap.status is EcsStatus.SUCCESSFUL
    if not p.advanced or p.rolling_back or (stage is None and not succeeded):
        return [], seen
    passed = stages_passed(seen, stage)
    entered = [stage] if stage is not None and stage not in seen else []
    seen = seen + tuple(passed) + tuple(entered)
    if succeeded:  # everything after the last stage we saw ran before the end
        tail = stages_passed(seen, None)
        passed, seen = passed + tail, seen + tuple(tail)
    events = [Event(EventKind.STAGE_PASSED, f"stage-passed:{s}", s.value, {"stage": s.value}) for s in passed]
    previous = p.tracked.lifecycle_stage.value if p.tracked.lifecycle_stage else None
    events += [
        Event(EventKind.STAGE_ENTERED, f"stage:{s}", s.value, {"stage": s.value, "previous": previous}) for s in entered
    ]
    # The success tail is passed after the stage entered in this same pass: keep ECS's order.
    events.sort(key=lambda e: STAGE_ORDER.index(LifecycleStage(e.detail["stage"])))
    return events, seen


def _rollback_event(p: _Pass, cause: Mapping[str, Any], actor: str | None) -> list[Event]:
    if not p.rolling_back:
        return []
    rb = p.snap.rollback
    detail = {
        **cause,
        "reason": p.snap.status_reason,
        "rollback_reason": rb.reason if rb else None,
        "started_at": _iso(rb.started_at) if rb else None,
        "to_revision": rb.service_revision_arn if rb else None,
        "by": actor,
    }
    stage = p.snap.lifecycle_stage or p.tracked.lifecycle_stage
    return [Event(EventKind.ROLLBACK_STARTED, "rollback", stage.value if stage else None, detail, actor)]


# Where traffic ends when ECS reports no weights with the outcome: all on green after a success, all back after a
# rollback, however much of the shift ran between two polls.
FINAL_WEIGHT = {DeploymentStatus.SUCCEEDED: 100.0, DeploymentStatus.ROLLED_BACK: 0.0}


def _weights(p: _Pass, final: DeploymentStatus | None) -> tuple[float | None, float | None]:
    target = p.snap.target
    if not p.shifts:
        return p.tracked.test_weight, p.tracked.production_weight
    ended = FINAL_WEIGHT.get(final) if final is not None else None
    test = target.test_weight if target is not None else None
    prod = target.production_weight if target is not None else None
    fallback_test = ended if ended is not None else p.tracked.test_weight
    fallback_prod = ended if ended is not None else p.tracked.production_weight
    return (test if test is not None else fallback_test), (prod if prod is not None else fallback_prod)


def _traffic_event(p: _Pass, test: float | None, prod: float | None) -> Event | None:
    old_t, old_p = p.tracked.test_weight or 0.0, p.tracked.production_weight or 0.0
    new_t, new_p = test or 0.0, prod or 0.0
    if (tenths(old_t), tenths(old_p)) == (tenths(new_t), tenths(new_p)):
        return None
    direction = "rb" if p.rolling_back else "fwd"
    detail: dict[str, Any] = {
        "direction": direction,
        "test_weight": new_t,
        "production_weight": new_p,
        "previous_test_weight": old_t,
        "previous_production_weight": old_p,
        "source_test_weight": round(100.0 - new_t, 1),
        "source_production_weight": round(100.0 - new_p, 1),
    }
    if direction == "fwd" and tenths(new_p) != tenths(old_p) and new_p > 0:
        detail["step"], detail["steps"] = step_position(p.strategy, p.step_percent, new_p)
        detail["approved_by"] = _approved_by(p, new_p)
    if direction == "rb":
        stage = p.snap.lifecycle_stage or p.tracked.lifecycle_stage
    else:  # forward traffic moves in its own shift stage, whatever stage the poll caught
        production = tenths(new_p) != tenths(old_p)
        stage = LifecycleStage.PRODUCTION_TRAFFIC_SHIFT if production else LifecycleStage.TEST_TRAFFIC_SHIFT
    key = f"traffic:{direction}:{new_t:.1f}:{new_p:.1f}"
    return Event(EventKind.TRAFFIC_MOVED, key, stage.value if stage else None, detail)


def _approved_by(p: _Pass, weight: float) -> str | None:
    """Who approved the production step that reached `weight`, when one of our people did (the pause before it)."""
    for hook_id, info in p.hooks.items():
        step = info.get("next_step") or {}
        decision = p.decisions.get(hook_id)
        if decision and decision[0] is DecisionKind.APPROVE and tenths(step.get("percent", -1.0)) == tenths(weight):
            return decision[1]
    return None


def _with_traffic(stage_events: list[Event], traffic: Event | None) -> list[Event]:
    """Stage events with forward traffic placed right after the shift stage it happened in."""
    if traffic is None or traffic.detail["direction"] != "fwd":
        return stage_events
    at = STAGE_ORDER.index(LifecycleStage(str(traffic.stage)))
    cut = sum(1 for e in stage_events if STAGE_ORDER.index(LifecycleStage(e.detail["stage"])) <= at)
    return [*stage_events[:cut], traffic, *stage_events[cut:]]


def _bake(key: str, kind: str, minutes: int | None, since: datetime | None, *, extra: Mapping[str, Any]) -> Event:
    until = since + timedelta(minutes=minutes) if minutes is not None and since is not None else None
    detail = {"kind": kind, "minutes": minutes, "since": _iso(since), "until": _iso(until), **extra}
    stage = "BAKE_TIME" if kind == "final" else "PRODUCTION_TRAFFIC_SHIFT"
    return Event(EventKind.BAKE_STARTED, key, stage, detail)


def _bake_events(p: _Pass, traffic: Event | None) -> list[Event]:
    if not p.advanced or p.rolling_back or p.snap.status.is_terminal:
        return []
    events = []
    if p.snap.lifecycle_stage is LifecycleStage.BAKE_TIME and p.snap.bake_minutes != 0:
        events.append(_bake("bake:BAKE_TIME", "final", p.snap.bake_minutes, p.since, extra={}))
    step = traffic.detail.get("step") if traffic else None
    if traffic and step and p.strategy in STEPPED and step < traffic.detail["steps"]:
        snap = p.snap
        minutes = snap.canary_bake_minutes if p.strategy is Strategy.CANARY else snap.step_bake_minutes
        if minutes != 0:
            weight = traffic.detail["production_weight"]
            extra = {"step": step, "steps": traffic.detail["steps"], "production_weight": weight}
            events.append(_bake(f"bake:step:{weight:.1f}", "step", minutes, p.since, extra=extra))
    return events


def _awaiting(p: _Pass) -> list[Event]:
    events = []
    for hook in p.snap.hooks:
        if hook.status != HookStatus.AWAITING_ACTION:
            continue
        stage = p.hooks[hook.hook_id].get("stage")
        detail: dict[str, Any] = {
            "hook_id": hook.hook_id,
            "stage": stage,
            "target_type": hook.target_type,
            "expires_at": _iso(hook.expires_at),
            "timeout_action": hook.timeout_action,
        }
        if p.hooks[hook.hook_id].get("next_step"):
            detail["next_step"] = p.hooks[hook.hook_id]["next_step"]
        events.append(Event(EventKind.HOOK_AWAITING, f"hook:{hook.hook_id}:AWAITING_ACTION", stage, detail))
    return events


def _finished(p: _Pass, final: DeploymentStatus, cause: Mapping[str, Any], actor: str | None) -> Event:
    snap = p.snap
    began, ended = ecs_started(snap), ecs_ended(snap)
    detail: dict[str, Any] = {
        "outcome": final.value,
        "ecs_status": snap.status.value,
        "reason": snap.status_reason,
        "started_at": _iso(began),
        "finished_at": _iso(ended),
        # Both ends on ECS's clock, never ours: the same figure whatever our clock says.
        "duration_seconds": int((ended - began).total_seconds()) if began and ended else None,
    }
    if final is DeploymentStatus.SUPERSEDED:
        detail.update(cause=RollbackCause.SUPERSEDED, superseded_by=p.superseded_by)
    elif final is not DeploymentStatus.SUCCEEDED:
        detail.update(cause, by=actor)
    stage = snap.lifecycle_stage or p.tracked.lifecycle_stage
    return Event(EventKind.FINISHED, "finished", stage.value if stage else None, detail)


def _status(p: _Pass, final: DeploymentStatus | None) -> DeploymentStatus:
    if final is not None:
        return final
    if p.rolling_back:
        return DeploymentStatus.ROLLING_BACK
    if any(h.is_pause and h.status == HookStatus.AWAITING_ACTION for h in p.snap.hooks):
        return DeploymentStatus.AWAITING_APPROVAL
    return DeploymentStatus.IN_PROGRESS


def _make_pass(
    tracked: Tracked,
    snap: Snapshot,
    now: datetime,
    decisions: DecisionsByHook,
    *,
    stopped_by: str | None,
    by: str | None,
) -> _Pass:
    strategy = snap.strategy or tracked.strategy
    configured = snap.canary_percent if strategy is Strategy.CANARY else snap.linear_step_percent
    rolling_back = rollback_active(snap)
    hooks = _merge_hooks(tracked, snap, now, decisions, rolling_back)
    step = configured if configured is not None else tracked.step_percent
    reported = snap.target.production_weight if snap.target is not None else None
    weight = reported if reported is not None else tracked.production_weight  # where traffic is now
    for hook in snap.hooks:
        info = hooks[hook.hook_id]
        stepped = strategy is not Strategy.ROLLING and info.get("stage") == HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT
        if stepped and hook.status == HookStatus.AWAITING_ACTION and "next_step" not in info:
            # Which step this pause guards, fixed when it is first seen: the approval and the move refer to it.
            info["next_step"] = next_step(strategy, step, weight)
    return _Pass(tracked, snap, now, decisions, strategy, step, rolling_back, hooks, stopped_by, by)


def _propose(p: _Pass, stage_events: list[Event], traffic: Event | None, final: DeploymentStatus | None) -> list[Event]:
    # Narrative order: what finished, where we are (with forward traffic in its stage), why it turns back,
    # traffic going back, bakes, what waits, the end.
    cause, actor = classify_rollback(p.snap, p.hooks, p.decisions, p.stopped_by)
    proposed = [*_resolutions(p), *_with_traffic(stage_events, traffic), *_rollback_event(p, cause, actor)]
    proposed += [traffic] if traffic and traffic.detail["direction"] == "rb" else []
    proposed += [*_bake_events(p, traffic), *_awaiting(p)]
    proposed += [_finished(p, final, cause, actor)] if final else []
    return proposed


def _bake_until(p: _Pass, fresh: list[Event], traffic: Event | None, final: DeploymentStatus | None) -> datetime | None:
    bakes = [e for e in fresh if e.kind is EventKind.BAKE_STARTED]
    if bakes and bakes[-1].detail.get("until"):
        return datetime.fromisoformat(bakes[-1].detail["until"])
    moved = traffic is not None or p.snap.lifecycle_stage not in (None, p.tracked.lifecycle_stage)
    return None if final or moved else p.tracked.bake_until


def advance(
    tracked: Tracked,
    snapshot: Snapshot,
    now: datetime,
    decisions: DecisionsByHook | None = None,
    *,
    stopped_by: str | None = None,
    superseded_by: str | None = None,
) -> tuple[Tracked, list[Event]]:
    """Compare a snapshot with the stored state; return the new state and the events not emitted before.

    `decisions` maps hookId → (decision, user) for hooks our users resolved; `stopped_by` names the user when we
    called StopServiceDeployment; `superseded_by` is the newer deployment when the caller knows one replaced it.
    """
    snapshot = as_reported(snapshot, snapshot.strategy or tracked.strategy, tracked.production_weight)
    p = _make_pass(tracked, snapshot, now, decisions or {}, stopped_by=stopped_by, by=superseded_by)
    final = outcome(snapshot, superseded_by)
    stage_events, seen = _stage_events(p)
    test, prod = _weights(p, final)
    traffic = _traffic_event(p, test, prod) if p.shifts else None
    emitted = set(tracked.emitted)
    fresh = []
    for event in _propose(p, stage_events, traffic, final):
        if event.key not in emitted:
            emitted.add(event.key)
            fresh.append(event)
    state = replace(
        tracked,
        strategy=p.strategy,
        step_percent=p.step_percent,
        status=_status(p, final),
        ecs_status=snapshot.status,
        lifecycle_stage=snapshot.lifecycle_stage or tracked.lifecycle_stage,
        stages_seen=seen,
        test_weight=test,
        production_weight=prod,
        hooks={hid: str(info.get("status")) for hid, info in p.hooks.items()},
        hook_info={hid: {k: v for k, v in info.items() if k != "status"} for hid, info in p.hooks.items()},
        rollback_seen=tracked.rollback_seen or p.rolling_back,
        bake_until=_bake_until(p, fresh, traffic, final),
        emitted=tracked.emitted + tuple(e.key for e in fresh),
    )
    return state, fresh
