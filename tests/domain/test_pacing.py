"""The describe schedule: budget per pass, pace, how long quiet deployments wait, the client-side token bucket."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.enums import DeploymentStatus, LifecycleStage, Pace
from bot.domain.pacing import Budget, TokenBucket, next_describe, pace_of, quiet_interval

S = timedelta(seconds=1)
NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("budget", "interval", "per_pass"),
    [
        (Budget(), 5 * S, 1600),  # 16 calls/s × 5 s × 20 ARNs
        (Budget(calls_per_second=20), 5 * S, 2000),  # all of ECS's sustained rate
        (Budget(), 1 * S, 320),
        (Budget(calls_per_second=0.1), 1 * S, 20),  # at least one call a pass
        (Budget(calls_per_second=2, arns_per_call=1), 1.5 * S, 3),
    ],
)
def test_a_pass_describes_what_the_interval_allows(budget: Budget, interval: timedelta, per_pass: int) -> None:
    assert budget.per_pass(interval) == per_pass


@pytest.mark.parametrize(
    ("status", "stage", "baking", "pace"),
    [
        (DeploymentStatus.AWAITING_APPROVAL, LifecycleStage.POST_TEST_TRAFFIC_SHIFT, False, Pace.QUIET),
        (DeploymentStatus.IN_PROGRESS, LifecycleStage.BAKE_TIME, False, Pace.QUIET),
        (DeploymentStatus.IN_PROGRESS, LifecycleStage.PRODUCTION_TRAFFIC_SHIFT, True, Pace.QUIET),  # step bake
        (DeploymentStatus.IN_PROGRESS, LifecycleStage.PRODUCTION_TRAFFIC_SHIFT, False, Pace.MOVING),
        (DeploymentStatus.IN_PROGRESS, LifecycleStage.SCALE_UP, False, Pace.MOVING),
        (DeploymentStatus.ROLLING_BACK, LifecycleStage.BAKE_TIME, False, Pace.QUIET),
        (DeploymentStatus.ROLLING_BACK, None, False, Pace.MOVING),
        (DeploymentStatus.REQUESTED, None, False, Pace.MOVING),
    ],
)
def test_quiet_is_baking_or_waiting_for_a_person(
    status: DeploymentStatus, stage: LifecycleStage | None, baking: bool, pace: Pace
) -> None:
    assert pace_of(status, stage, baking) is pace


@pytest.mark.parametrize(
    ("moving", "quiet", "capacity", "stretch"),
    [
        (0, 0, 1600, 0 * S),
        (1000, 0, 1600, 0 * S),  # everything fits: every pass
        (600, 1000, 1600, 0 * S),  # exactly fits
        (1000, 9000, 1600, 60 * S),  # 600 spare for 9,000 quiet: 15 passes = 72.5 s, capped at a minute
        (1000, 1000, 1600, 7.5 * S),  # 600 spare for 1,000 quiet: every 2nd pass
        (100, 9900, 1600, 32.5 * S),  # 1,500 spare: every 7th pass
        (1600, 10, 1600, 60 * S),  # no spare at all: the longest wait
        (5000, 10, 1600, 60 * S),
        (2000, 0, 1600, 0 * S),  # nothing quiet to stretch: moving ones take turns (the claim's order)
    ],
)
def test_quiet_deployments_share_what_the_moving_ones_leave(
    moving: int, quiet: int, capacity: int, stretch: timedelta
) -> None:
    assert quiet_interval(moving, quiet, capacity, 5 * S, 60 * S) == stretch


def test_every_quiet_deployment_is_described_within_its_stretch() -> None:
    """Simulated: with the stretch above, each pass's due quiet deployments never exceed the spare capacity."""
    moving, quiet, capacity, interval = 1000, 4000, 1600, 5 * S
    stretch = quiet_interval(moving, quiet, capacity, interval, 60 * S)
    passes = int(stretch / interval) + 1
    assert quiet / passes <= capacity - moving


@pytest.mark.parametrize(
    ("pace", "stretch", "due"),
    [(Pace.MOVING, 60 * S, NOW), (Pace.QUIET, 0 * S, NOW), (Pace.QUIET, 30 * S, NOW + 30 * S)],
)
def test_next_describe(pace: Pace, stretch: timedelta, due: datetime) -> None:
    assert next_describe(pace, NOW, stretch) == due


@pytest.mark.parametrize(
    ("takes_at", "waits"),
    [
        ([0.0, 0.0, 0.0], [0.0, 0.0, 0.5]),  # burst 2, then one token per 0.5 s
        ([0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 1.0]),  # each wait reserves its token
        ([0.0, 0.0, 1.0], [0.0, 0.0, 0.0]),  # refilled meanwhile
        ([0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.5, 0.5]),  # the reservation is kept across calls
        ([0.0, 100.0, 100.0, 100.0], [0.0, 0.0, 0.0, 0.5]),  # never more than the burst after a long idle
    ],
)
def test_token_bucket_spreads_calls_at_its_rate(takes_at: list[float], waits: list[float]) -> None:
    bucket = TokenBucket.full(rate=2.0, burst=2.0, now=0.0)
    assert [pytest.approx(bucket.take(t)) for t in takes_at] == waits


def test_a_pass_at_the_budget_never_outruns_ecs_bucket() -> None:
    """1,600 describes a pass paced by the default budget stay inside ECS's bucket (burst 50, 20/s) every pass."""
    budget, t = Budget(), 0.0
    ours = TokenBucket.full(budget.calls_per_second, budget.burst, 0.0)
    ecs = TokenBucket.full(20.0, 50.0, 0.0)
    for _ in range(3):  # three passes of 80 calls, 5 s apart at the earliest
        for _ in range(budget.per_pass(5 * S) // budget.arns_per_call):
            t += ours.take(t)
            assert ecs.take(t) == 0.0
