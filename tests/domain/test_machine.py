"""Table-driven tests of the pure deployment state machine, built from ECS_BEHAVIOUR.md."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.enums import DecisionKind, DeploymentStatus, EcsStatus, EventKind, LifecycleStage, Strategy
from bot.domain.machine.advance import Event, Tracked, advance, production_steps
from bot.domain.machine.rules import next_step, stages_passed, step_position
from bot.domain.snapshot import AlarmsInfo, CircuitBreakerInfo, HookDetail, RevisionSummary, RollbackInfo, Snapshot

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ARN = "arn:aws:ecs:us-east-1:123456789012:service-deployment/unicorn-watch/ui/abc"
GREEN = "arn:aws:ecs:us-east-1:123456789012:service-revision/unicorn-watch/ui/2"
BLUE = "arn:aws:ecs:us-east-1:123456789012:service-revision/unicorn-watch/ui/1"
S = LifecycleStage


def snap(
    stage: LifecycleStage | None = None,
    weights: tuple[float | None, float | None] | None = (0.0, 0.0),
    *,
    status: str = "IN_PROGRESS",
    hooks: tuple[HookDetail, ...] = (),
    strategy: Strategy = Strategy.BLUE_GREEN,
    step: float | None = None,
    step_bake: int | None = 5,
    bake: int | None = 10,
    reason: str | None = None,
    rollback: RollbackInfo | None = None,
    alarms: AlarmsInfo | None = None,
    breaker: CircuitBreakerInfo | None = None,
    at: int = 0,
) -> Snapshot:
    """A snapshot as snapshot_from_api would build it; `at` is minutes after T0 (updatedAt)."""
    target = None
    if weights is not None:
        target = RevisionSummary(GREEN, 2, 2, 0, weights[0], weights[1])
    rolling = strategy is Strategy.ROLLING
    finished = T0 + timedelta(minutes=at) if EcsStatus(status).is_terminal else None
    return Snapshot(
        arn=ARN,
        status=EcsStatus(status),
        status_reason=reason,
        lifecycle_stage=stage,
        strategy=strategy,
        target=RevisionSummary(GREEN, 2, 2, 0) if rolling else target,
        hooks=hooks,
        rollback=rollback,
        alarms=alarms,
        circuit_breaker=breaker,
        canary_percent=step if strategy is Strategy.CANARY else None,
        canary_bake_minutes=step_bake if strategy is Strategy.CANARY else None,
        linear_step_percent=step if strategy is Strategy.LINEAR else None,
        step_bake_minutes=step_bake if strategy is Strategy.LINEAR else None,
        bake_minutes=None if rolling else bake,
        created_at=T0,
        started_at=T0,
        updated_at=T0 + timedelta(minutes=at),
        finished_at=finished,
    )


def pause(hook_id: str, status: str = "AWAITING_ACTION", action: str = "ROLLBACK", expires: int = 600) -> HookDetail:
    return HookDetail(hook_id, "PAUSE", None, status, T0 + timedelta(minutes=expires), action)


def lam(hook_id: str, status: str) -> HookDetail:
    return HookDetail(hook_id, "AWS_LAMBDA", "arn:aws:lambda:us-east-1:123456789012:function:succeed", status)


def run(
    snaps: list[Snapshot],
    strategy: Strategy = Strategy.BLUE_GREEN,
    step: float | None = None,
    decisions: dict[str, tuple[DecisionKind, str]] | None = None,
    **kwargs: Any,
) -> tuple[Tracked, list[Event]]:
    tracked = Tracked.start(strategy, step)
    events: list[Event] = []
    for i, s in enumerate(snaps):
        # Polls happen after every updatedAt used in the tables (now is T0 + 1 h and on).
        tracked, new = advance(tracked, s, T0 + timedelta(hours=1, minutes=i), decisions, **kwargs)
        events += new
    return tracked, events


def keys(events: list[Event]) -> list[str]:
    return [e.key for e in events]


def by_key(events: list[Event], key: str) -> Event:
    return next(e for e in events if e.key == key)


# --- production steps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "step", "expected"),
    [
        (Strategy.BLUE_GREEN, None, [100.0]),
        (Strategy.ROLLING, None, []),
        (Strategy.CANARY, 10.0, [10.0, 100.0]),
        (Strategy.CANARY, 0.1, [0.1, 100.0]),
        (Strategy.CANARY, None, [5.0, 100.0]),
        (Strategy.LINEAR, 20.0, [20.0, 40.0, 60.0, 80.0, 100.0]),
        (Strategy.LINEAR, 11.0, [11.0, 22.0, 33.0, 44.0, 55.0, 66.0, 77.0, 88.0, 99.0, 100.0]),
        (Strategy.LINEAR, 33.3, [33.3, 66.6, 99.9, 100.0]),
        (Strategy.LINEAR, 3.0, [*(k * 3.0 for k in range(1, 34)), 100.0]),
        (Strategy.LINEAR, 50.0, [50.0, 100.0]),
        (Strategy.LINEAR, 100.0, [100.0]),
    ],
)
def test_production_steps(strategy: Strategy, step: float | None, expected: list[float]) -> None:
    assert production_steps(strategy, step) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("strategy", "step", "weight", "expected"),
    [
        (Strategy.BLUE_GREEN, None, 100.0, (1, 1)),
        (Strategy.CANARY, 10.0, 10.0, (1, 2)),
        (Strategy.CANARY, 10.0, 100.0, (2, 2)),
        (Strategy.LINEAR, 11.0, 99.0, (9, 10)),
        (Strategy.LINEAR, 11.0, 100.0, (10, 10)),
        (Strategy.LINEAR, 20.0, 50.0, (2, 5)),  # an unexpected weight counts the steps reached
    ],
)
def test_step_position(strategy: Strategy, step: float | None, weight: float, expected: tuple[int, int]) -> None:
    assert step_position(strategy, step, weight) == expected


def test_next_step_names_the_step_a_pause_guards() -> None:
    assert next_step(Strategy.CANARY, 10.0, 0.0) == {"k": 1, "n": 2, "percent": 10.0}
    assert next_step(Strategy.CANARY, 10.0, 10.0) == {"k": 2, "n": 2, "percent": 100.0}


@pytest.mark.parametrize(
    ("seen", "stage", "expected"),
    [
        ((), S.SCALE_UP, [S.PRE_SCALE_UP]),  # RECONCILE_SERVICE is never assumed
        ((S.PRE_SCALE_UP,), S.TEST_TRAFFIC_SHIFT, [S.SCALE_UP, S.POST_SCALE_UP]),
        ((S.BAKE_TIME,), S.SCALE_UP, []),  # backwards: nothing passed
        ((S.POST_PRODUCTION_TRAFFIC_SHIFT,), None, [S.BAKE_TIME, S.CLEAN_UP]),
    ],
)
def test_stages_passed(seen: tuple[LifecycleStage, ...], stage: LifecycleStage | None, expected: list[S]) -> None:
    assert stages_passed(seen, stage) == expected


# --- blue/green -------------------------------------------------------------------------------------------------

BG_HAPPY = [
    snap(None, None, status="PENDING"),
    snap(S.PRE_SCALE_UP),
    snap(S.SCALE_UP),
    snap(S.POST_SCALE_UP),
    snap(S.TEST_TRAFFIC_SHIFT, (100.0, 0.0)),
    snap(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), hooks=(lam("lam-1", "IN_PROGRESS"), pause("ecs-pause-a"))),
    snap(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), hooks=(lam("lam-1", "SUCCEEDED"), pause("ecs-pause-a"))),
    snap(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0), at=30),
    snap(S.POST_PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0)),
    snap(S.BAKE_TIME, (100.0, 100.0), at=40),
    snap(S.CLEAN_UP, (100.0, 100.0)),
    snap(S.CLEAN_UP, (100.0, 100.0), status="SUCCESSFUL", reason="deployment completed successfully", at=55),
]


def test_blue_green_happy_path_keys_in_order() -> None:
    tracked, events = run(BG_HAPPY, decisions={"ecs-pause-a": (DecisionKind.APPROVE, "U0BOB")})
    assert keys(events) == [
        "stage:PRE_SCALE_UP",
        "stage:SCALE_UP",
        "stage:POST_SCALE_UP",
        "stage:TEST_TRAFFIC_SHIFT",
        "traffic:fwd:100.0:0.0",
        "stage:POST_TEST_TRAFFIC_SHIFT",
        "hook:ecs-pause-a:AWAITING_ACTION",
        "hook:lam-1:resolved",
        "hook:ecs-pause-a:resolved",  # vanished after the approval: inferred from our decision
        "stage:PRODUCTION_TRAFFIC_SHIFT",
        "traffic:fwd:100.0:100.0",
        "stage:POST_PRODUCTION_TRAFFIC_SHIFT",
        "stage:BAKE_TIME",
        "bake:BAKE_TIME",
        "stage:CLEAN_UP",
        "finished",
    ]
    assert tracked.status is DeploymentStatus.SUCCEEDED
    assert tracked.ecs_status is EcsStatus.SUCCESSFUL


def test_blue_green_statuses_along_the_way() -> None:
    tracked = Tracked.start(Strategy.BLUE_GREEN)
    statuses = []
    for i, s in enumerate(BG_HAPPY):
        tracked, _ = advance(tracked, s, T0 + timedelta(minutes=i))
        statuses.append(tracked.status)
    assert statuses[4] is DeploymentStatus.IN_PROGRESS
    assert statuses[5] is DeploymentStatus.AWAITING_APPROVAL
    assert statuses[7] is DeploymentStatus.IN_PROGRESS
    assert statuses[-1] is DeploymentStatus.SUCCEEDED


def test_hook_awaiting_detail() -> None:
    _, events = run(BG_HAPPY[:6])
    event = by_key(events, "hook:ecs-pause-a:AWAITING_ACTION")
    assert event.kind is EventKind.HOOK_AWAITING
    assert event.stage == "POST_TEST_TRAFFIC_SHIFT"
    assert event.detail == {
        "hook_id": "ecs-pause-a",
        "stage": "POST_TEST_TRAFFIC_SHIFT",
        "target_type": "PAUSE",
        "expires_at": (T0 + timedelta(minutes=600)).isoformat(),
        "timeout_action": "ROLLBACK",
    }


def test_hook_resolved_by_our_user_names_them() -> None:
    _, events = run(BG_HAPPY[:8], decisions={"ecs-pause-a": (DecisionKind.APPROVE, "U0BOB")})
    event = by_key(events, "hook:ecs-pause-a:resolved")
    assert event.kind is EventKind.HOOK_RESOLVED
    assert event.actor == "U0BOB"
    assert event.detail["outcome"] == "succeeded"
    assert event.detail["resolved_by"] == "U0BOB"
    assert event.detail["decision"] == "APPROVE"
    assert event.detail["inferred"] is True


def test_lambda_hook_resolved_detail() -> None:
    _, events = run(BG_HAPPY[:7])
    event = by_key(events, "hook:lam-1:resolved")
    assert event.actor is None
    assert event.detail["outcome"] == "succeeded"
    assert event.detail["target_type"] == "AWS_LAMBDA"
    assert event.detail["target_arn"].endswith("function:succeed")
    assert event.detail["inferred"] is False


def test_hook_approved_outside_the_bot_has_no_actor() -> None:
    _, events = run(BG_HAPPY[:8])
    event = by_key(events, "hook:ecs-pause-a:resolved")
    assert event.actor is None
    assert event.detail["outcome"] == "succeeded"
    assert event.detail["resolved_by"] is None


def test_traffic_detail_blue_green() -> None:
    _, events = run(BG_HAPPY[:8])
    test_shift = by_key(events, "traffic:fwd:100.0:0.0")
    assert "step" not in test_shift.detail  # test traffic is not a production step
    prod = by_key(events, "traffic:fwd:100.0:100.0")
    assert prod.kind is EventKind.TRAFFIC_MOVED
    assert prod.detail == {
        "direction": "fwd",
        "test_weight": 100.0,
        "production_weight": 100.0,
        "previous_test_weight": 100.0,
        "previous_production_weight": 0.0,
        "source_test_weight": 0.0,
        "source_production_weight": 0.0,
        "step": 1,
        "steps": 1,
        "approved_by": None,  # BG_HAPPY's pause guards test traffic, not this production step
    }


def test_bake_time_detail_uses_updated_at() -> None:
    tracked, events = run(BG_HAPPY[:10])
    event = by_key(events, "bake:BAKE_TIME")
    assert event.stage == "BAKE_TIME"
    assert event.detail == {
        "kind": "final",
        "minutes": 10,
        "since": (T0 + timedelta(minutes=40)).isoformat(),
        "until": (T0 + timedelta(minutes=50)).isoformat(),
    }
    assert tracked.bake_until == T0 + timedelta(minutes=50)


def test_bake_of_zero_minutes_is_not_announced() -> None:
    _, events = run([snap(S.BAKE_TIME, (100.0, 100.0), bake=0)])
    assert "bake:BAKE_TIME" not in keys(events)


def test_finished_detail_with_duration() -> None:
    tracked, events = run(BG_HAPPY)
    event = by_key(events, "finished")
    assert event.kind is EventKind.FINISHED
    assert event.detail == {
        "outcome": "SUCCEEDED",
        "ecs_status": "SUCCESSFUL",
        "reason": "deployment completed successfully",
        "started_at": T0.isoformat(),
        "finished_at": (T0 + timedelta(minutes=55)).isoformat(),
        "duration_seconds": 55 * 60,
    }
    assert tracked.bake_until is None


@pytest.mark.parametrize("bot_offset", [timedelta(0), timedelta(hours=5), -timedelta(days=2)])
def test_times_of_what_ecs_did_come_from_ecs_whatever_the_bot_clock(bot_offset: timedelta) -> None:
    # docs/ARCHITECTURE.md, "Clocks": ECS's timestamps for what ECS did; the bot's `now` never enters them.
    tracked = Tracked.start(Strategy.CANARY, 10.0)
    now = T0 + bot_offset
    for s in (
        snap(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0), strategy=Strategy.CANARY, step=10.0, at=20),
        snap(S.BAKE_TIME, (100.0, 100.0), strategy=Strategy.CANARY, step=10.0, at=40),
        snap(S.CLEAN_UP, (100.0, 100.0), strategy=Strategy.CANARY, step=10.0, status="SUCCESSFUL", at=72),
    ):
        tracked, events = advance(tracked, s, now, {})
        for e in events:
            if e.kind is EventKind.BAKE_STARTED:
                assert s.updated_at is not None and e.detail["since"] == s.updated_at.isoformat()
        now += timedelta(seconds=1)
    assert tracked.bake_until is None
    finished = by_key(events, "finished")
    assert finished.detail["duration_seconds"] == 72 * 60
    assert finished.detail["finished_at"] == (T0 + timedelta(minutes=72)).isoformat()


def test_a_bake_without_ecs_updated_at_has_no_end() -> None:
    no_time = replace(snap(S.BAKE_TIME, (100.0, 100.0), bake=10), updated_at=None)
    state, events = advance(Tracked.start(Strategy.BLUE_GREEN), no_time, T0 + timedelta(hours=9), {})
    bake = by_key(events, "bake:BAKE_TIME")
    assert (bake.detail["since"], bake.detail["until"], state.bake_until) == (None, None, None)


def test_the_outcome_of_a_rollback_names_who_asked() -> None:
    snaps = [
        snap(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 0.0), hooks=(pause("h1"),)),
        snap(S.PRODUCTION_TRAFFIC_SHIFT, (0.0, 0.0), status="ROLLBACK_SUCCESSFUL", hooks=(pause("h1", "FAILED"),)),
    ]
    _, events = run(snaps, decisions={"h1": (DecisionKind.ROLLBACK, "U0CAROL")})
    assert by_key(events, "finished").detail["by"] == "U0CAROL"


@pytest.mark.parametrize(
    ("last", "weights"),
    [
        (snap(S.CLEAN_UP, None, status="SUCCESSFUL", at=55), (100.0, 100.0)),
        (
            snap(S.TEST_TRAFFIC_SHIFT, None, status="ROLLBACK_SUCCESSFUL", rollback=RollbackInfo("alarm"), at=55),
            (0.0, 0.0),
        ),
        (snap(S.CLEAN_UP, (100.0, 100.0), status="SUCCESSFUL", at=55), (100.0, 100.0)),
    ],
)
def test_the_final_traffic_is_ecs_outcome_even_when_the_shift_ran_between_polls(
    last: Snapshot, weights: tuple[float, float]
) -> None:
    # The last poll saw test traffic only; ECS then shifted production and finished before the next poll.
    tracked, _ = run([snap(S.TEST_TRAFFIC_SHIFT, (100.0, 0.0)), last])
    assert (tracked.test_weight, tracked.production_weight) == weights


def test_a_headless_service_shifts_nothing_whatever_weights_ecs_reports() -> None:
    tracked = Tracked.start(Strategy.BLUE_GREEN, headless=True)
    for s in (snap(S.TEST_TRAFFIC_SHIFT, (100.0, 0.0)), snap(S.CLEAN_UP, (100.0, 100.0), status="SUCCESSFUL")):
        tracked, events = advance(tracked, s, T0 + timedelta(hours=1), {})
        assert not [e for e in events if e.kind is EventKind.TRAFFIC_MOVED]
    assert tracked.production_weight is None and Tracked.from_json(tracked.to_json()).headless


def test_headless_blue_green_moves_no_traffic() -> None:
    snaps = [snap(s) for s in (S.PRE_SCALE_UP, S.TEST_TRAFFIC_SHIFT, S.PRODUCTION_TRAFFIC_SHIFT, S.CLEAN_UP)]
    _, events = run([*snaps, snap(S.CLEAN_UP, status="SUCCESSFUL")])
    assert not [e for e in events if e.kind is EventKind.TRAFFIC_MOVED]
    assert keys(events)[-1] == "finished"


# --- missed stages ----------------------------------------------------------------------------------------------


def test_missed_stages_are_reported_passed() -> None:
    _, events = run([snap(S.SCALE_UP), snap(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0))])
    assert keys(events) == [
        "stage-passed:PRE_SCALE_UP",
        "stage:SCALE_UP",
        "stage-passed:POST_SCALE_UP",
        "stage-passed:TEST_TRAFFIC_SHIFT",
        "traffic:fwd:100.0:0.0",  # placed in the stage it happened in, not where the poll caught it
        "stage:POST_TEST_TRAFFIC_SHIFT",
    ]
    passed = by_key(events, "stage-passed:TEST_TRAFFIC_SHIFT")
    assert passed.kind is EventKind.STAGE_PASSED
    assert passed.detail == {"stage": "TEST_TRAFFIC_SHIFT"}


def test_stage_entered_detail_names_previous_stage() -> None:
    _, events = run([snap(S.PRE_SCALE_UP), snap(S.SCALE_UP)])
    event = by_key(events, "stage:SCALE_UP")
    assert event.kind is EventKind.STAGE_ENTERED
    assert event.detail == {"stage": "SCALE_UP", "previous": "PRE_SCALE_UP"}


def test_reconcile_service_only_when_seen() -> None:
    _, events = run([snap(S.RECONCILE_SERVICE), snap(S.SCALE_UP)])
    assert keys(events) == ["stage:RECONCILE_SERVICE", "stage-passed:PRE_SCALE_UP", "stage:SCALE_UP"]


def test_success_seen_late_passes_the_remaining_stages() -> None:
    _, events = run(
        [snap(S.POST_PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0)), snap(None, (100.0, 100.0), status="SUCCESSFUL")]
    )
    assert keys(events)[-3:] == ["stage-passed:BAKE_TIME", "stage-passed:CLEAN_UP", "finished"]


def test_missing_stage_and_weights_are_tolerated() -> None:
    tracked, events = run([snap(S.TEST_TRAFFIC_SHIFT, (100.0, 0.0)), snap(None, None), snap(None, (None, None))])
    assert keys(events) == [
        "stage-passed:PRE_SCALE_UP",
        "stage-passed:SCALE_UP",
        "stage-passed:POST_SCALE_UP",
        "stage:TEST_TRAFFIC_SHIFT",
        "traffic:fwd:100.0:0.0",
    ]
    assert tracked.lifecycle_stage is S.TEST_TRAFFIC_SHIFT
    assert (tracked.test_weight, tracked.production_weight) == (100.0, 0.0)


def test_same_snapshot_twice_emits_nothing_new() -> None:
    tracked = Tracked.start(Strategy.BLUE_GREEN)
    for s in BG_HAPPY:
        tracked, _ = advance(tracked, s, T0)
        again, second = advance(tracked, s, T0)
        assert second == []
        assert again == tracked
        assert len(set(tracked.emitted)) == len(tracked.emitted)


def test_replaying_from_stored_json_emits_nothing_new() -> None:
    tracked, _ = run(BG_HAPPY[:7])
    stored = json.loads(json.dumps(tracked.to_json()))
    restored = Tracked.from_json(stored)
    assert restored == tracked
    _, events = advance(restored, BG_HAPPY[6], T0 + timedelta(minutes=30))
    assert events == []


def test_event_details_are_json_serialisable() -> None:
    _, events = run(CANARY_TWICE, Strategy.CANARY, 10.0, decisions=CANARY_DECISIONS)
    json.dumps([e.detail for e in events])


# --- canary and linear ------------------------------------------------------------------------------------------


def canary(stage: LifecycleStage, weights: tuple[float, float], **kw: Any) -> Snapshot:
    return snap(stage, weights, strategy=Strategy.CANARY, step=10.0, **kw)


CANARY_TWICE = [
    canary(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0)),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 0.0), hooks=(pause("ecs-pause-1"),)),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0), at=10),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0), hooks=(pause("ecs-pause-2"),)),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0)),
    canary(S.BAKE_TIME, (100.0, 100.0)),
    canary(S.CLEAN_UP, (100.0, 100.0), status="SUCCESSFUL"),
]
CANARY_DECISIONS = {
    "ecs-pause-1": (DecisionKind.APPROVE, "U0BOB"),
    "ecs-pause-2": (DecisionKind.APPROVE, "U0CAROL"),
}


def test_canary_asks_twice() -> None:
    tracked, events = run(CANARY_TWICE, Strategy.CANARY, 10.0, decisions=CANARY_DECISIONS)
    assert [k for k in keys(events) if not k.startswith("stage")] == [
        "traffic:fwd:100.0:0.0",
        "hook:ecs-pause-1:AWAITING_ACTION",
        "hook:ecs-pause-1:resolved",
        "traffic:fwd:100.0:10.0",
        "bake:step:10.0",
        "hook:ecs-pause-2:AWAITING_ACTION",
        "hook:ecs-pause-2:resolved",
        "traffic:fwd:100.0:100.0",
        "bake:BAKE_TIME",
        "finished",
    ]
    assert [e.actor for e in events if e.kind is EventKind.HOOK_RESOLVED] == ["U0BOB", "U0CAROL"]
    # Each production move names who approved the pause before it (the narrative folds the move into that line).
    moves = [e.detail.get("approved_by") for e in events if e.kind is EventKind.TRAFFIC_MOVED and "step" in e.detail]
    assert moves == ["U0BOB", "U0CAROL"]
    assert tracked.status is DeploymentStatus.SUCCEEDED


def test_a_pause_seen_with_the_move_before_it_guards_the_step_after_it() -> None:
    # One poll shows step 1 taken and the pause before step 2: the pause guards step 2, and its approval names it.
    sparse = [CANARY_TWICE[1], canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0), hooks=(pause("ecs-pause-2"),))]
    _, events = run(sparse, Strategy.CANARY, 10.0, decisions={"ecs-pause-1": (DecisionKind.APPROVE, "U0BOB")})
    assert by_key(events, "hook:ecs-pause-2:AWAITING_ACTION").detail["next_step"] == {"k": 2, "n": 2, "percent": 100.0}
    assert by_key(events, "traffic:fwd:100.0:10.0").detail["approved_by"] == "U0BOB"


def test_a_step_released_outside_deploybot_names_no_approver() -> None:
    _, events = run(CANARY_TWICE, Strategy.CANARY, 10.0, decisions={"ecs-pause-2": (DecisionKind.APPROVE, "U0BOB")})
    moves = [e.detail.get("approved_by") for e in events if e.kind is EventKind.TRAFFIC_MOVED and "step" in e.detail]
    assert moves == [None, "U0BOB"]


def test_canary_pause_is_at_pre_production_and_names_next_step() -> None:
    _, events = run(CANARY_TWICE[:4], Strategy.CANARY, 10.0)
    first = by_key(events, "hook:ecs-pause-1:AWAITING_ACTION")
    second = by_key(events, "hook:ecs-pause-2:AWAITING_ACTION")
    assert first.stage == "PRE_PRODUCTION_TRAFFIC_SHIFT"
    assert first.detail["next_step"] == {"k": 1, "n": 2, "percent": 10.0}
    assert second.detail["next_step"] == {"k": 2, "n": 2, "percent": 100.0}


def test_canary_traffic_steps_and_step_bake() -> None:
    _, events = run(CANARY_TWICE, Strategy.CANARY, 10.0)
    assert by_key(events, "traffic:fwd:100.0:10.0").detail["step"] == 1
    assert by_key(events, "traffic:fwd:100.0:100.0").detail["step"] == 2
    bake = by_key(events, "bake:step:10.0")
    assert bake.stage == "PRODUCTION_TRAFFIC_SHIFT"
    assert bake.detail == {
        "kind": "step",
        "minutes": 5,
        "since": (T0 + timedelta(minutes=10)).isoformat(),
        "until": (T0 + timedelta(minutes=15)).isoformat(),
        "step": 1,
        "steps": 2,
        "production_weight": 10.0,
    }


@pytest.mark.parametrize(
    ("step", "weights"),
    [
        (20.0, [20.0, 40.0, 60.0, 80.0, 100.0]),
        (11.0, [11.0, 22.0, 33.0, 44.0, 55.0, 66.0, 77.0, 88.0, 99.0, 100.0]),
    ],
)
def test_linear_steps(step: float, weights: list[float]) -> None:
    snaps = [snap(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, w), strategy=Strategy.LINEAR, step=step) for w in weights]
    _, events = run(snaps, Strategy.LINEAR, step)
    moves = [e for e in events if e.kind is EventKind.TRAFFIC_MOVED and e.detail["production_weight"] > 0]
    assert [(e.detail["step"], e.detail["steps"]) for e in moves] == [
        (k, len(weights)) for k in range(1, len(weights) + 1)
    ]
    bakes = [e.key for e in events if e.kind is EventKind.BAKE_STARTED]
    assert bakes == [f"bake:step:{w:.1f}" for w in weights[:-1]]  # no step bake after the last step


def test_linear_twenty_asks_five_times() -> None:
    snaps = []
    for i, w in enumerate([0.0, 20.0, 40.0, 60.0, 80.0]):
        snaps.append(
            snap(
                S.PRODUCTION_TRAFFIC_SHIFT,
                (100.0, w),
                strategy=Strategy.LINEAR,
                step=20.0,
                hooks=(pause(f"ecs-pause-{i}"),),
            )
        )
        snaps.append(snap(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, w + 20.0), strategy=Strategy.LINEAR, step=20.0))
    _, events = run(snaps, Strategy.LINEAR, 20.0)
    asks = [e for e in events if e.kind is EventKind.HOOK_AWAITING]
    assert [e.detail["next_step"]["k"] for e in asks] == [1, 2, 3, 4, 5]
    assert len([e for e in events if e.kind is EventKind.HOOK_RESOLVED]) == 5


# --- rollbacks --------------------------------------------------------------------------------------------------

RB = RollbackInfo("rollback reason from ECS", T0 + timedelta(minutes=20), BLUE)


def rolled(hooks: tuple[HookDetail, ...] = (), status: str = "ROLLBACK_IN_PROGRESS", **kw: Any) -> Snapshot:
    """ECS keeps the last lifecycleStage during a rollback (sandbox choice) and moves weights back to 0."""
    return snap(S.POST_TEST_TRAFFIC_SHIFT, (0.0, 0.0), status=status, hooks=hooks, rollback=RB, **kw)


BEFORE = [snap(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), hooks=(pause("ecs-pause-a"),))]


@pytest.mark.parametrize(
    ("name", "last", "decisions", "stopped_by", "expected_cause", "actor"),
    [
        (
            "decision",
            rolled((pause("ecs-pause-a", "FAILED"),)),
            {"ecs-pause-a": (DecisionKind.ROLLBACK, "U0BOB")},
            None,
            {"cause": "user", "hook_id": "ecs-pause-a", "stage": "POST_TEST_TRAFFIC_SHIFT"},
            "U0BOB",
        ),
        ("stop", rolled(status="ROLLBACK_REQUESTED"), {}, "U0ONCALL", {"cause": "user"}, "U0ONCALL"),
        (
            "timeout",
            rolled((pause("ecs-pause-a", "TIMED_OUT"),)),
            {},
            None,
            {
                "cause": "timeout",
                "hook_id": "ecs-pause-a",
                "stage": "POST_TEST_TRAFFIC_SHIFT",
                "target_type": "PAUSE",
                "target_arn": None,
                "timeout_action": "ROLLBACK",
            },
            None,
        ),
        (
            "alarm",
            rolled(alarms=AlarmsInfo("TRIGGERED", ("cpu-high", "5xx"), ("5xx",))),
            {},
            None,
            {"cause": "alarm", "alarm_names": ["5xx"], "alarm_name": "5xx"},
            None,
        ),
        (
            "breaker",
            rolled(breaker=CircuitBreakerInfo("TRIGGERED", 3, 3)),
            {},
            None,
            {"cause": "circuit_breaker", "failure_count": 3, "threshold": 3},
            None,
        ),
        (
            "lambda",
            rolled((lam("lam-9", "FAILED"),), reason="deployment failed: hook execution failure(s) detected"),
            {},
            None,
            {
                "cause": "hook_failure",
                "hook_id": "lam-9",
                "stage": "POST_TEST_TRAFFIC_SHIFT",
                "target_type": "AWS_LAMBDA",
                "target_arn": lam("x", "").target_arn,
                "timeout_action": None,
            },
            None,
        ),
        (
            "text",
            snap(S.SCALE_UP, (0.0, 0.0), status="ROLLBACK_IN_PROGRESS", reason="circuit breaker tripped"),
            {},
            None,
            {"cause": "circuit_breaker"},
            None,
        ),
        (
            "unknown",
            snap(S.SCALE_UP, (0.0, 0.0), status="ROLLBACK_IN_PROGRESS", reason="stage ran over 24 hours"),
            {},
            None,
            {"cause": "ecs"},
            None,
        ),
    ],
)
def test_rollback_causes(
    name: str,
    last: Snapshot,
    decisions: dict[str, Any],
    stopped_by: str | None,
    expected_cause: dict[str, Any],
    actor: str | None,
) -> None:
    tracked, events = run([*BEFORE, last], decisions=decisions, stopped_by=stopped_by)
    event = by_key(events, "rollback")
    assert event.kind is EventKind.ROLLBACK_STARTED
    assert event.actor == actor
    assert {k: event.detail[k] for k in expected_cause} == expected_cause
    assert event.detail["reason"] == last.status_reason
    assert tracked.status is DeploymentStatus.ROLLING_BACK
    assert tracked.rollback_seen


def test_rollback_detail_carries_ecs_rollback_block() -> None:
    _, events = run([*BEFORE, rolled((pause("ecs-pause-a", "FAILED"),))])
    detail = by_key(events, "rollback").detail
    assert detail["rollback_reason"] == "rollback reason from ECS"
    # RollbackInfo.started_at is Optional; RB sets it (a None would fail this assertion as an AttributeError).
    assert detail["started_at"] == RB.started_at.isoformat()  # type: ignore[union-attr]
    assert detail["to_revision"] == BLUE
    assert detail["by"] is None


def test_rollback_sequence_and_traffic_back() -> None:
    done = rolled(status="ROLLBACK_SUCCESSFUL", reason="rolled back; rollback completed successfully")
    tracked, events = run(
        [*BEFORE, rolled((pause("ecs-pause-a", "FAILED"),)), done],
        decisions={"ecs-pause-a": (DecisionKind.ROLLBACK, "U0BOB")},
    )
    assert keys(events)[-4:] == ["hook:ecs-pause-a:resolved", "rollback", "traffic:rb:0.0:0.0", "finished"]
    assert by_key(events, "hook:ecs-pause-a:resolved").detail["outcome"] == "failed"
    assert by_key(events, "traffic:rb:0.0:0.0").detail["direction"] == "rb"
    finished = by_key(events, "finished")
    assert finished.detail["outcome"] == "ROLLED_BACK"
    assert finished.detail["cause"] == "user"
    assert tracked.status is DeploymentStatus.ROLLED_BACK
    after = events[keys(events).index("rollback") :]
    assert not [e for e in after if e.kind in (EventKind.STAGE_ENTERED, EventKind.STAGE_PASSED)]


def test_rollback_during_bake_time() -> None:
    snaps = [
        snap(S.BAKE_TIME, (100.0, 100.0)),
        snap(S.BAKE_TIME, (0.0, 0.0), status="ROLLBACK_SUCCESSFUL", rollback=RB),
    ]
    tracked, events = run(snaps, stopped_by="U0BOB")
    assert keys(events)[-3:] == ["rollback", "traffic:rb:0.0:0.0", "finished"]
    assert by_key(events, "rollback").stage == "BAKE_TIME"
    assert tracked.status is DeploymentStatus.ROLLED_BACK


def test_rollback_failed() -> None:
    tracked, events = run(
        [
            *BEFORE,
            rolled(
                (lam("lam-9", "FAILED"),),
                status="ROLLBACK_FAILED",
                reason="rollback failed: hook execution failure(s) detected",
            ),
        ]
    )
    assert by_key(events, "finished").detail["outcome"] == "ROLLBACK_FAILED"
    assert tracked.status is DeploymentStatus.ROLLBACK_FAILED


def test_pause_timing_out_with_continue_goes_on() -> None:
    snaps = [*BEFORE, snap(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), hooks=(pause("ecs-pause-a", "TIMED_OUT"),))]
    tracked, events = run(snaps, decisions={"ecs-pause-a": (DecisionKind.APPROVE, "U0LATE")})
    event = by_key(events, "hook:ecs-pause-a:resolved")
    assert event.detail["outcome"] == "timed_out"
    assert event.actor is None  # our approval lost the race with the timeout
    assert "rollback" not in keys(events)
    assert tracked.status is DeploymentStatus.IN_PROGRESS


def test_vanished_pause_after_expiry_is_inferred_timed_out() -> None:
    late = snap(S.POST_TEST_TRAFFIC_SHIFT, (0.0, 0.0), status="ROLLBACK_IN_PROGRESS", rollback=RB)
    tracked = Tracked.start(Strategy.BLUE_GREEN)
    tracked, _ = advance(tracked, BEFORE[0], T0)
    tracked, events = advance(tracked, late, T0 + timedelta(minutes=601))
    assert by_key(events, "hook:ecs-pause-a:resolved").detail["status"] == "TIMED_OUT"
    assert by_key(events, "rollback").detail["cause"] == "timeout"


# --- stops and supersession -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "superseded_by", "expected"),
    [
        ("deployment stopped: a new service deployment was started", None, DeploymentStatus.SUPERSEDED),
        (
            "stopped",
            "arn:aws:ecs:us-east-1:123456789012:service-deployment/unicorn-watch/ui/new",
            DeploymentStatus.SUPERSEDED,
        ),
        ("deployment stopped: alarm 5xx in ALARM", None, DeploymentStatus.STOPPED),
    ],
)
def test_stopped_or_superseded(reason: str, superseded_by: str | None, expected: DeploymentStatus) -> None:
    snaps = [
        snap(S.SCALE_UP),
        snap(S.SCALE_UP, status="STOP_REQUESTED"),
        snap(S.SCALE_UP, status="STOPPED", reason=reason),
    ]
    tracked, events = run(snaps, superseded_by=superseded_by)
    assert tracked.status is expected
    finished = by_key(events, "finished")
    assert finished.detail["outcome"] == expected.value
    assert "rollback" not in keys(events)


def test_superseded_detail() -> None:
    new = "arn:aws:ecs:us-east-1:123456789012:service-deployment/unicorn-watch/ui/new"
    _, events = run([snap(S.SCALE_UP, status="STOPPED", reason="stopped")], superseded_by=new)
    detail = by_key(events, "finished").detail
    assert detail["cause"] == "superseded"
    assert detail["superseded_by"] == new


def test_stopped_by_alarm_without_rollback_names_the_alarm() -> None:
    s = snap(S.SCALE_UP, status="STOPPED", reason="alarm", alarms=AlarmsInfo("TRIGGERED", ("5xx",), ("5xx",)))
    _, events = run([s])
    assert by_key(events, "finished").detail["cause"] == "alarm"
    assert by_key(events, "finished").detail["alarm_name"] == "5xx"


def test_stop_requested_is_still_in_progress() -> None:
    tracked, _ = run([snap(S.SCALE_UP, status="STOP_REQUESTED")])
    assert tracked.status is DeploymentStatus.IN_PROGRESS


# --- rolling ----------------------------------------------------------------------------------------------------


def rolling(status: str = "IN_PROGRESS", **kw: Any) -> Snapshot:
    return snap(None, None, status=status, strategy=Strategy.ROLLING, **kw)


def test_rolling_success_has_no_stages_or_weights() -> None:
    tracked, events = run([rolling("PENDING"), rolling(), rolling("SUCCESSFUL", at=4)], Strategy.ROLLING)
    assert keys(events) == ["finished"]
    assert by_key(events, "finished").detail["outcome"] == "SUCCEEDED"
    assert tracked.status is DeploymentStatus.SUCCEEDED
    assert tracked.stages_seen == ()


def test_rolling_failure_by_circuit_breaker_rolls_back() -> None:
    breaker = CircuitBreakerInfo("TRIGGERED", 3, 3)
    snaps = [
        rolling(),
        rolling("ROLLBACK_IN_PROGRESS", breaker=breaker, rollback=RB),
        rolling("ROLLBACK_SUCCESSFUL", breaker=breaker, rollback=RB),
    ]
    tracked, events = run(snaps, Strategy.ROLLING)
    assert keys(events) == ["rollback", "finished"]
    assert by_key(events, "rollback").detail["cause"] == "circuit_breaker"
    assert tracked.status is DeploymentStatus.ROLLED_BACK


def test_rolling_failure_without_rollback_ends_stopped() -> None:
    s = rolling(
        "STOPPED", reason="circuit breaker: tasks failed to start", breaker=CircuitBreakerInfo("TRIGGERED", 5, 5)
    )
    tracked, events = run([s], Strategy.ROLLING)
    assert keys(events) == ["finished"]
    assert by_key(events, "finished").detail["cause"] == "circuit_breaker"
    assert tracked.status is DeploymentStatus.STOPPED


def test_strategy_comes_from_ecs_when_reported() -> None:
    tracked = replace(Tracked.start(Strategy.BLUE_GREEN), step_percent=None)
    tracked, _ = advance(tracked, canary(S.PRE_SCALE_UP, (0.0, 0.0)), T0)
    assert (tracked.strategy, tracked.step_percent) == (Strategy.CANARY, 10.0)


def test_forward_traffic_is_narrated_in_its_shift_stage() -> None:
    snaps = [canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0)), canary(S.POST_PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0))]
    _, events = run(snaps, Strategy.CANARY, 10.0)
    assert keys(events)[-2:] == ["traffic:fwd:100.0:100.0", "stage:POST_PRODUCTION_TRAFFIC_SHIFT"]
    assert by_key(events, "traffic:fwd:100.0:100.0").stage == "PRODUCTION_TRAFFIC_SHIFT"


@pytest.mark.parametrize("bake_stage", [S.PRODUCTION_TRAFFIC_SHIFT, S.BAKE_TIME])
def test_a_step_bake_is_a_step_bake_whatever_stage_ecs_reports(bake_stage: LifecycleStage) -> None:
    """Undocumented: lifecycleStage during a canary step bake (sandbox switch step_bake_stage)."""
    c = Strategy.CANARY
    tracked, events = run(
        [
            snap(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), strategy=c, step=10.0),
            snap(bake_stage, (100.0, 10.0), strategy=c, step=10.0, at=2),
            snap(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0), strategy=c, step=10.0, at=8),
            snap(S.BAKE_TIME, (100.0, 100.0), strategy=c, step=10.0, at=9),
        ],
        c,
        10.0,
    )
    bakes = [(e.detail["kind"], e.detail["since"]) for e in events if e.kind is EventKind.BAKE_STARTED]
    assert [kind for kind, _ in bakes] == ["step", "final"]
    assert bakes[1][1] == (T0 + timedelta(minutes=9)).isoformat()  # the final bake began when ECS said so
    passed = [e.detail["stage"] for e in events if e.kind is EventKind.STAGE_PASSED]
    assert "POST_PRODUCTION_TRAFFIC_SHIFT" in passed and keys(events).index(
        "stage-passed:POST_PRODUCTION_TRAFFIC_SHIFT"
    ) > keys(events).index("bake:step:10.0")
    assert tracked.stages_seen.count(S.BAKE_TIME) == 1
