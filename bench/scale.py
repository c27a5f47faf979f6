"""Scale phases: a pass with nothing new (CPU), resident memory, and ECS's describe budget with 10,000 tracked."""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bench.probes import percentile
from bench.stack import Stack
from bot.domain.pacing import ARNS_PER_CALL, Budget
from bot.engine.reconciler import PassReport, Reconciler
from sandbox.ecs.errors import EcsError


def rss_mb() -> float:
    """This process's resident set size now, in MB (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


@dataclass
class Watch:
    """What ECS saw during a phase: describe calls (time, ARNs) and the throttling answers it gave."""

    calls: list[tuple[float, tuple[str, ...]]] = field(default_factory=list)
    throttled: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def peak_per_second(self) -> int:
        """The most describe calls that fell in any one-second window."""
        times = sorted(t for t, _ in self.calls)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    def longest_wait(self, arns: set[str]) -> float:
        """The longest time between two describes of one of `arns` (first call of the phase counts from 0)."""
        first = self.calls[0][0] if self.calls else 0.0
        last: dict[str, float] = {}
        worst = 0.0
        for t, batch in self.calls:
            for arn in batch:
                if arn in arns:
                    worst = max(worst, t - last.get(arn, first))
                    last[arn] = t
        return worst


@contextmanager
def watching(stack: Stack) -> Iterator[Watch]:
    """Record every DescribeServiceDeployments reaching the sandbox and every ThrottlingException it answers."""
    sandbox, watch = stack.ecs.sandbox, Watch()
    original_call, original_check = sandbox.call, sandbox.throttle.check

    def call(operation: str, raw: bytes, caller: str | None = None) -> tuple[int, bytes]:
        if operation == "DescribeServiceDeployments":
            import json

            arns = tuple(json.loads(raw).get("serviceDeploymentArns") or ())
            with watch.lock:
                watch.calls.append((time.monotonic(), arns))
        return original_call(operation, raw, caller)

    def check(operation: str) -> None:
        try:
            original_check(operation)
        except EcsError as exc:
            if exc.code == "ThrottlingException":
                with watch.lock:
                    watch.throttled += 1
            raise

    sandbox.call, sandbox.throttle.check = call, check  # type: ignore[method-assign]
    try:
        yield watch
    finally:
        sandbox.call, sandbox.throttle.check = original_call, original_check  # type: ignore[method-assign]


@dataclass
class BudgetResult:
    label: str
    live: int
    interval: float
    reports: list[PassReport]
    walls: list[float]
    watch: Watch
    calls_per_pass: list[int]
    moving: set[str]
    quiet: set[str]

    @property
    def described(self) -> int:
        return len({arn for _, batch in self.watch.calls for arn in batch})


def run_passes(stack: Stack, reconciler: Reconciler, interval: float, seconds: float, label: str) -> BudgetResult:
    """reconcile_once() every `interval` s (like the scheduler's interval job) for `seconds`, ECS throttling on."""
    stack.ecs.sandbox.throttle.set_enabled(True)
    reports: list[PassReport] = []
    walls: list[float] = []
    per_pass: list[int] = []
    try:
        with watching(stack) as watch:
            started = time.monotonic()
            while time.monotonic() - started < seconds:
                begun, before = time.monotonic(), len(watch.calls)
                reports.append(reconciler.reconcile_once())
                walls.append(time.monotonic() - begun)
                per_pass.append(len(watch.calls) - before)
                time.sleep(max(0.0, begun + interval - time.monotonic()))
    finally:
        stack.ecs.sandbox.throttle.set_enabled(False)
    moving, quiet = paces(stack)
    return BudgetResult(
        label, reports[-1].live if reports else 0, interval, reports, walls, watch, per_pass, moving, quiet
    )


def paces(stack: Stack) -> tuple[set[str], set[str]]:
    """ARNs of the live deployments by the reconciler's own notion of pace, as stored now."""
    from sqlalchemy import select

    from bot.domain.enums import ACTIVE_STATUSES, Pace
    from bot.domain.pacing import pace_of
    from models import Deployment

    moving: set[str] = set()
    quiet: set[str] = set()
    with stack.ctx.sessions() as session:
        rows = session.execute(
            select(
                Deployment.ecs_deployment_arn, Deployment.status, Deployment.lifecycle_stage, Deployment.tracked
            ).where(Deployment.status.in_(ACTIVE_STATUSES))
        ).all()
    for arn, status, stage, tracked in rows:
        pace = pace_of(status, stage, baking=bool((tracked or {}).get("bake_until")))
        (quiet if pace is Pace.QUIET else moving).add(str(arn))
    return moving, quiet


def forget_schedule(stack: Stack) -> None:
    """Every live deployment due now, as if never described (so the naive pass below sees all of them)."""
    from sqlalchemy import update

    from models import Deployment

    with stack.ctx.sessions() as session, session.begin():
        session.execute(update(Deployment).values(lease_until=None, lease_owner=None))


def budgeted(stack: Stack, interval: float, owner: str, budget: Budget | None = None) -> Reconciler:
    """A reconciler like the bot's, for this poll interval (the naive one gets an unlimited budget)."""
    return Reconciler(
        stack.ctx.usecases.decisions, owner=owner, interval=timedelta(seconds=interval), budget=budget or Budget()
    )


NAIVE = Budget(calls_per_second=1e6, burst=10**6)  # describe everything every pass, as fast as it goes


@dataclass
class IdleResult:
    live: int
    thread_cpu_ms: list[float]
    process_cpu_ms: list[float]
    wall_ms: list[float]
    describe_calls: list[int]


def idle_passes(stack: Stack, reconciler: Reconciler, passes: int = 5) -> IdleResult:
    """Passes over deployments ECS has not moved since the last one: the bot thread's CPU (and the process's)."""
    for _ in range(8):  # first bring every deployment up to date (nothing new in two passes running)
        if reconciler.reconcile_once().events == 0 and reconciler.reconcile_once().events == 0:
            break
    result = IdleResult(0, [], [], [], [])
    with watching(stack) as watch:
        for _ in range(passes):
            before = len(watch.calls)
            t0, p0, w0 = time.thread_time(), time.process_time(), time.perf_counter()
            report = reconciler.reconcile_once()
            result.thread_cpu_ms.append((time.thread_time() - t0) * 1000)
            result.process_cpu_ms.append((time.process_time() - p0) * 1000)
            result.wall_ms.append((time.perf_counter() - w0) * 1000)
            result.describe_calls.append(len(watch.calls) - before)
            result.live = report.claimed
    return result


def budget_notes(r: BudgetResult) -> list[str]:
    """One line per figure of a budget phase."""
    claimed = [x.claimed for x in r.reports]
    stretch = max((x.stretch.total_seconds() for x in r.reports), default=0.0)
    expected = [-(-c // ARNS_PER_CALL) for c in claimed]
    calls = r.calls_per_pass
    held = "held" if expected == calls else "NOT held"
    return [
        f"{r.label}: {r.live:,} live, {len(r.reports)} passes every {r.interval:g} s: claimed/pass "
        f"{min(claimed, default=0)}-{max(claimed, default=0)}, describe calls/pass {min(calls, default=0)}"
        f"-{max(calls, default=0)} (ceil(claimed/20) {held}), peak {r.watch.peak_per_second()} calls in one "
        f"second, ThrottlingException {r.watch.throttled}, delayed {sum(x.delayed for x in r.reports)}; "
        f"{r.described:,} distinct deployments described; quiet stretch {stretch:g} s; pass wall p50 "
        f"{percentile(r.walls, 50):.2f} s, max {max(r.walls, default=0):.2f} s",
        f"{r.label}: now {len(r.moving):,} moving / {len(r.quiet):,} quiet; longest wait between two describes: "
        f"moving {r.watch.longest_wait(r.moving):.1f} s, quiet {r.watch.longest_wait(r.quiet):.1f} s",
    ]


def summary(values: list[float]) -> dict[str, Any]:
    return {"p50": percentile(values, 50), "max": max(values, default=float("nan"))}
