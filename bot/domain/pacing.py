"""Which live deployments to describe each pass, within ECS's describe budget (pure: times are passed in).

ECS allows about 20 DescribeServiceDeployments (+ ListServiceDeployments) calls a second per account and Region,
with a burst of 50, 20 ARNs a call (`../shared/ECS_BEHAVIOUR.md` §7). One pass every poll interval can therefore
describe at most `Budget.per_pass(interval)` deployments. Past that, the deployments that cannot change soon by
themselves (baking, waiting for an approval) are described less often, so the moving ones keep the poll interval;
the reconciler never asks for more than the budget, so it is never throttled by its own polling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.domain.enums import DeploymentStatus, LifecycleStage, Pace

ARNS_PER_CALL = 20  # DescribeServiceDeployments takes at most 20 ARNs


@dataclass(frozen=True)
class Budget:
    """The share of ECS's describe budget one bot process uses."""

    # ECS sustains 20 calls/s (burst 50) for Describe + ListServiceDeployments together; the rest of it is left
    # for the request paths (ListServiceDeployments after UpdateService) and the unstarted-deployment lookups.
    calls_per_second: float = 16.0
    burst: int = 40
    arns_per_call: int = ARNS_PER_CALL
    # However short the budget, a quiet deployment is looked at at least this often (a bake ends, a pause times out
    # or an alarm fires without a person doing anything).
    max_quiet: timedelta = timedelta(seconds=60)

    def per_pass(self, interval: timedelta) -> int:
        """How many deployments one pass may describe: the calls the interval allows, 20 ARNs each."""
        calls = max(1, math.floor(self.calls_per_second * interval.total_seconds()))
        return calls * self.arns_per_call


def pace_of(status: DeploymentStatus, stage: LifecycleStage | None, baking: bool = False) -> Pace:
    """QUIET while ECS bakes or a pause waits for a person; MOVING otherwise."""
    if status is DeploymentStatus.AWAITING_APPROVAL or stage is LifecycleStage.BAKE_TIME or baking:
        return Pace.QUIET
    return Pace.MOVING


def quiet_interval(moving: int, quiet: int, capacity: int, interval: timedelta, max_quiet: timedelta) -> timedelta:
    """How long a quiet deployment waits between two describes so that all of them fit `capacity` per pass.

    Zero while everything fits in one pass. Otherwise the moving ones keep every pass and the quiet ones share
    what is left, each waiting as many passes as it takes to go round them all, never more than `max_quiet`.
    """
    if moving + quiet <= capacity or quiet == 0:
        return timedelta(0)
    spare = capacity - moving
    if spare <= 0:
        return max_quiet
    passes = math.ceil(quiet / spare)
    # Half an interval short of `passes` intervals, so the pass that falls due is not missed by a few milliseconds.
    return min(max_quiet, interval * passes - interval / 2)


def next_describe(pace: Pace, now: datetime, stretch: timedelta) -> datetime:
    """When the deployment is next due: the next pass for a moving one, after `stretch` for a quiet one."""
    return now + stretch if pace is Pace.QUIET else now


@dataclass
class TokenBucket:
    """A client-side token bucket on a monotonic clock (seconds): how long to wait before the next call."""

    rate: float
    burst: float
    tokens: float
    at: float

    @classmethod
    def full(cls, rate: float, burst: float, now: float) -> TokenBucket:
        """A bucket that starts with its whole burst available."""
        return cls(rate, burst, burst, now)

    def take(self, now: float) -> float:
        """Take one token; returns the seconds to wait before the call may go (0 when a token was there)."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = max(self.at, now)
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate
