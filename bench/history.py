"""`/deploy history <service>` and a person's history on a large PostgreSQL table, bulk-loaded with generate_series.

The rows are finished deployments of `SERVICES` services by `USERS` people, `EVENTS_PER` events each, spread over a
year. The timed calls are the use cases themselves (`Deployments.history`, `Deployments.history_for_user`): every
query they run (the deployments, then each one's events and decisions) and building the read models.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

from sqlalchemy import text

from bench.probes import percentile
from bench.stack import Stack

SERVICES = 1000
USERS = 500
EVENTS_PER = 10
SAMPLES = 200

_DEPLOYMENTS = """
INSERT INTO deployments (service_key, cluster, service, region, strategy, approval_stages, status, tracked,
                         requested_by, channel_id, created_at, updated_at, started_at, finished_at, version)
SELECT 'hist-' || (g % :services), 'unicorn-watch', 'hist-' || (g % :services), 'us-east-1', 'CANARY', '[]',
       'SUCCEEDED', '{"strategy": "CANARY"}', 'U' || lpad((g % :users)::text, 8, '0'), 'C0DEPLOYS',
       ts, ts, ts, ts + interval '5 minutes', 1
FROM generate_series(1, :count) AS g, LATERAL (SELECT now() - (g * interval '31 seconds') AS ts) AS t
"""
_EVENTS = """
INSERT INTO deployment_events (deployment_id, service_key, key, kind, detail, at)
SELECT d.id, d.service_key, 'stage:' || e, 'STAGE_ENTERED', '{}', d.created_at + e * interval '1 second'
FROM deployments d CROSS JOIN generate_series(1, :per) AS e
"""


@dataclass
class HistoryResult:
    deployments: int
    events: int
    load_seconds: float
    service_ms: list[float]
    user_ms: list[float]
    plans: dict[str, str]


def load(stack: Stack, count: int) -> float:
    """Bulk-load `count` deployments and EVENTS_PER events each; ANALYZE; returns the seconds it took."""
    started = time.monotonic()
    with stack.ctx.db.begin() as conn:
        conn.execute(text(_DEPLOYMENTS), {"services": SERVICES, "users": USERS, "count": count})
        conn.execute(text(_EVENTS), {"per": EVENTS_PER})
    with stack.ctx.db.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE deployments, deployment_events"))
    return time.monotonic() - started


def plans(stack: Stack) -> dict[str, str]:
    """EXPLAIN of the statements the two use cases send (one service, one person, one deployment's events)."""
    queries = {
        "service": "SELECT * FROM deployments WHERE service_key = 'hist-7' ORDER BY created_at DESC, id DESC LIMIT 10",
        "user": "SELECT * FROM deployments WHERE requested_by = 'U00000007' ORDER BY created_at DESC, id DESC LIMIT 10",
        "events": "SELECT * FROM deployment_events WHERE deployment_id = 4242 ORDER BY id",
        "decisions": "SELECT * FROM decisions WHERE deployment_id = 4242",
    }
    out: dict[str, str] = {}
    with stack.ctx.db.connect() as conn:
        for name, sql in queries.items():
            rows = conn.execute(text(f"EXPLAIN {sql}")).scalars().all()
            out[name] = " / ".join(str(r).strip() for r in rows)
    return out


def measure(stack: Stack, count: int) -> HistoryResult:
    """Load, then time SAMPLES calls of each use case on random services and people."""
    seconds = load(stack, count)
    deployments = stack.ctx.usecases.deployments
    rng = random.Random(7)
    service_ms: list[float] = []
    user_ms: list[float] = []
    for _ in range(5):  # warm the connection pool and the statement cache
        deployments.history("hist-1")
    for _ in range(SAMPLES):
        key = f"hist-{rng.randrange(SERVICES)}"
        started = time.perf_counter()
        views = deployments.history(key)
        service_ms.append((time.perf_counter() - started) * 1000)
        assert len(views) == 10, f"{key}: {len(views)} deployments"
        user = f"U{rng.randrange(USERS):08d}"
        started = time.perf_counter()
        deployments.history_for_user(user)
        user_ms.append((time.perf_counter() - started) * 1000)
    return HistoryResult(count, count * EVENTS_PER, seconds, service_ms, user_ms, plans(stack))


def notes(r: HistoryResult) -> list[str]:
    """The load, the percentiles and the plans, one line each."""
    lines = [
        f"history: {r.deployments:,} deployments + {r.events:,} events loaded in {r.load_seconds:.0f} s; "
        f"/deploy history <service> p50 {percentile(r.service_ms, 50):.1f} / p95 {percentile(r.service_ms, 95):.1f}"
        f" ms; a person's history p50 {percentile(r.user_ms, 50):.1f} / p95 {percentile(r.user_ms, 95):.1f} ms"
    ]
    lines += [f"EXPLAIN ({name}): {plan}" for name, plan in r.plans.items()]
    return lines
