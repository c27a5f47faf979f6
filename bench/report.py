"""The user-felt and scale figures (issues P3, P4, P6) as table rows, one fresh stack per scenario."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from bench import acks, felt, history, scale
from bench.child import child_bot
from bench.probes import Row, percentile
from bench.seed import register_families, seed_live
from bench.stack import running_stack, service_key
from bot.domain.pacing import ARNS_PER_CALL, Budget
from sandbox.slack import workspace as ws

POLL_S = 5.0  # DEPLOYBOT_POLL_SECONDS in every stack (the default)
ACK_RATE_P99_MS = 50.0
BURST_P99_MS = 1000.0  # "well under Slack's 3 s"
CLICK_TO_ECS_MS = 300.0
CLICK_TO_ROOT_S = 1.5
REPLY_AFTER_BUTTONS_S = 2.0
SETTLED_S = 5.0
IDLE_PASS_CPU_MS = 200.0
RSS_MB = {"idle": 150.0, "1k": 300.0, "10k": 600.0}


HISTORY_P95_MS = 20.0


@dataclass(frozen=True)
class Sizes:
    ack_seconds: float
    burst_each: int  # /deploy requests and clicks, each, in the burst
    felt: tuple[int, ...]  # live deployments per user-felt scenario (clicks too)
    felt_stage_only: tuple[int, ...]  # scenarios measuring only ECS change → root
    idle: int
    tracked: int
    budget_seconds: float
    budget_interval: float
    history: int  # deployments in the history table (10 events each)
    naive: bool = True  # also run the naive listeners (the full run only)
    poll: float = POLL_S  # DEPLOYBOT_POLL_SECONDS of the user-felt stacks


FULL = Sizes(30.0, 50, (1, 10, 100), (1000,), 1000, 10_000, 90.0, POLL_S, 1_000_000)
QUICK = Sizes(1.0, 5, (1,), (), 100, 600, 2.0, 1.0, 10_000, naive=False, poll=2.0)


def _nan(values: list[float], q: float) -> float:
    return percentile(values, q) if values else math.nan


def ack_rows(backend: str, url: str | None, size: Sizes, notes: list[str]) -> list[Row]:
    """50 signed requests/s with ECS slow, and the burst with ECS throttled: ours and the naive listeners."""
    count = acks.services_needed(50, size.ack_seconds, size.burst_each)
    with running_stack(backend, url, count, create=False, approvals=True) as stack:
        r = acks.ack_phases(stack, 50, size.ack_seconds, size.burst_each, naive=size.naive)
    notes += [acks.load_notes(x) for x in (r.ours_rate, r.naive_rate, r.ours_burst, r.naive_burst) if x]
    n, b = len(r.ours_rate.sent), len(r.ours_burst.sent)

    rate, burst = r.naive_rate, r.naive_burst
    return [
        Row(
            f"ack p99, 50/s × {size.ack_seconds:g} s, ECS {acks.SLOW_ECS_S:g} s/call",
            r.ours_rate.p(99),
            "ms",
            ACK_RATE_P99_MS,
        ),
        _naive("  the naive way (Bolt's 5 threads, work after ack)", rate, lambda x: x.p(99), "ms"),
        Row(f"  acks not HTTP 200 (of {n})", n - r.ours_rate.ok, "", 1),
        _naive("  the naive way", rate, lambda x: len(x.sent) - x.ok, ""),
        Row(f"burst of {b} (/deploy + clicks), ECS throttled: ack p99", r.ours_burst.p(99), "ms", BURST_P99_MS),
        _naive("  the naive way", burst, lambda x: x.p(99), "ms"),
        Row("  acks not HTTP 200", b - r.ours_burst.ok, "", 1),
        _naive("  the naive way", burst, lambda x: len(x.sent) - x.ok, ""),
        Row("  never answered (response_url or ack)", b - r.ours_burst.answered, "", 1),
    ]


def _naive(metric: str, result: acks.LoadResult | None, value: Callable[[acks.LoadResult], float], unit: str) -> Row:
    """The naive way's figure, or "—" when it was not run (--quick)."""
    if result is None:
        return Row(metric, math.nan, unit, applies=False)
    return Row(metric, value(result), unit)


def felt_rows(backend: str, url: str | None, size: Sizes, notes: list[str]) -> list[Row]:
    """The user-felt latencies at Slack's pace, per number of live deployments."""
    rows: list[Row] = []
    for count in (*size.felt, *size.felt_stage_only):
        clicks = count in size.felt
        with running_stack(backend, url, count, create=False, approvals=True, poll_seconds=size.poll) as stack:
            result = felt.felt(stack, count, clicks=clicks, quiet=min(2.0, size.poll / 2))  # 2 s at a 5-s poll
        notes += felt.felt_notes(result)
        rows.append(
            Row(
                f"ECS change → root updated p95, {count} live (poll {size.poll:g} s)",
                _nan(result.stage_to_root, 95),
                "s",
                size.poll + 1.0,
            )
        )
        if not clicks:
            continue
        rows += [
            Row(
                f"  'approval needed' after the buttons p95, {count} live",
                _nan(result.buttons_to_reply, 95),
                "s",
                REPLY_AFTER_BUTTONS_S,
            ),
            Row(
                f"  click → ContinueServiceDeployment p95, {count} live",
                _nan(result.click_to_ecs, 95),
                "ms",
                CLICK_TO_ECS_MS,
            ),
            Row(f"  click → root updated p95, {count} live", _nan(result.click_to_root, 95), "s", CLICK_TO_ROOT_S),
            Row(f"  ECS ended → thread settled p95, {count} live", _nan(result.end_to_settled, 95), "s", SETTLED_S),
            Row(
                f"  the bot saw the end → thread settled p95, {count} live",
                _nan(result.seen_to_settled, 95),
                "s",
                SETTLED_S,
            ),
            Row(f"  not seen (of {count})", len(result.missing), "", 1),
        ]
    return rows


def scale_rows(backend: str, url: str | None, size: Sizes, notes: list[str]) -> list[Row]:
    """Memory idle / with live deployments, a pass with nothing new, the describe budget with many tracked."""
    with running_stack(backend, url, size.tracked, create=False) as stack:
        bench_idle = scale.rss_mb()
        with child_bot(stack, stack.database_url, size.tracked) as bot:
            register_families(stack)  # while the bot starts: it reads nothing before its first pass
            seed_live(stack, [service_key(i) for i in range(size.idle)], [ws.DEPLOYS_CHANNEL])
            idle_rss = bot.ask("rss")
            rss_1k = max(bot.ask("pass") for _ in range(2))
            reconciler = scale.budgeted(stack, size.budget_interval, "bench")
            idle = scale.idle_passes(stack, reconciler)
            started = time.monotonic()
            seed_live(stack, [service_key(i) for i in range(size.idle, size.tracked)], [ws.DEPLOYS_CHANNEL])
            notes.append(f"seeded {size.tracked:,} live deployments in {time.monotonic() - started:.1f} s")
            passes = -(-size.tracked // Budget().per_pass(timedelta(seconds=POLL_S))) + 1
            rss_10k = max(bot.ask("pass") for _ in range(passes))  # every one described at least once
        notes.append(
            f"resident memory of the bot's own process: idle {idle_rss:.0f} MB, {size.idle:,} live {rss_1k:.0f} MB, "
            f"{size.tracked:,} live {rss_10k:.0f} MB (max over {passes} passes); the benchmark's process (sandbox, "
            f"stand-in and the bot in one) {bench_idle:.0f} MB idle, {scale.rss_mb():.0f} MB now"
        )
        ours = scale.run_passes(stack, reconciler, size.budget_interval, size.budget_seconds, "budget-aware")
        naive = None
        if size.naive:
            time.sleep(3)  # ECS's bucket refills
            scale.forget_schedule(stack)
            naive = scale.run_passes(
                stack,
                scale.budgeted(stack, size.budget_interval, "naive", scale.NAIVE),
                size.budget_interval,
                0.1,
                "naive (all each pass)",
            )
    notes += scale.budget_notes(ours) + (scale.budget_notes(naive) if naive else [])
    notes.append(
        f"pass with nothing new over {idle.live}: bot thread CPU {[round(x) for x in idle.thread_cpu_ms]} ms, "
        f"process CPU {[round(x) for x in idle.process_cpu_ms]} ms (sandbox threads included), wall "
        f"{[round(x) for x in idle.wall_ms]} ms, describe calls {idle.describe_calls}"
    )
    span = max(1e-9, len(ours.reports) * size.budget_interval)  # the passes' share of time, as the scheduler runs them
    per_pass = Budget().per_pass(timedelta(seconds=size.budget_interval)) // ARNS_PER_CALL
    return [
        Row(
            f"idle pass over {idle.live}: bot CPU (median of {len(idle.thread_cpu_ms)})",
            percentile(idle.thread_cpu_ms, 50),
            "ms",
            IDLE_PASS_CPU_MS,
        ),
        Row(
            f"  describe calls in that pass (ceil({idle.live}/20) = {-(-idle.live // 20)})",
            max(idle.describe_calls, default=0),
            "",
            -(-idle.live // 20) + 1,
        ),
        Row("resident memory of the bot, idle", idle_rss, "MB", RSS_MB["idle"]),
        Row(f"  with {size.idle:,} live", rss_1k, "MB", RSS_MB["1k"]),
        Row(f"  with {size.tracked:,} live", rss_10k, "MB", RSS_MB["10k"]),
        Row(f"{size.tracked:,} tracked: ThrottlingException from our polling", ours.watch.throttled, "", 1),
        Row(
            "  the naive way (describe all every pass)",
            naive.watch.throttled if naive else math.nan,
            "",
            applies=bool(naive),
        ),
        Row("  describe calls/s, passes × interval (ECS sustains 20)", len(ours.watch.calls) / span, "/s", 20.01),
        Row(
            f"  most describe calls in one pass (budget {per_pass})",
            max(ours.calls_per_pass, default=0),
            "",
            per_pass + 1,
        ),
        Row(f"  deployments described at least once (of {size.tracked:,})", ours.described, ""),
        Row("  longest wait of a moving deployment", ours.watch.longest_wait(ours.moving), "s"),
        Row("  longest wait of a quiet deployment", ours.watch.longest_wait(ours.quiet), "s"),
    ]


def history_rows(backend: str, url: str | None, size: Sizes, notes: list[str]) -> list[Row]:
    """History of a service and of a person on a big table: PostgreSQL only (the target is about PostgreSQL)."""
    label = f"{size.history:,} deployments, {size.history * history.EVENTS_PER:,} events"
    if url is None:
        return [
            Row(f"/deploy history <service> p95 ({label})", math.nan, "ms", HISTORY_P95_MS, applies=False),
            Row("  a person's history p95", math.nan, "ms", HISTORY_P95_MS, applies=False),
        ]
    with running_stack(backend, url, 0, create=False) as stack:
        result = history.measure(stack, size.history)
    notes += history.notes(result)
    return [
        Row(f"/deploy history <service> p95 ({label})", percentile(result.service_ms, 95), "ms", HISTORY_P95_MS),
        Row("  a person's history p95", percentile(result.user_ms, 95), "ms", HISTORY_P95_MS),
    ]
