"""Gauges read from the database when /metrics is scraped: what is true for every replica at once.

Counters (ECS calls, Slack calls, outcomes) are counted in each process; how many deployments are active, how many
wait for approval and since when, and how far behind the outbox is are facts of the shared database, so they are
read at scrape time with three small aggregate queries (indexed: deployments by status, the unsent outbox rows,
the awaiting deployments' own events). Every replica reports the same values: alert on `max`, not `sum`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.db.sessions import is_postgres, transaction
from bot.domain.enums import ACTIVE_STATUSES, DeploymentStatus, EventKind, OutboxState, Strategy
from bot.logs import get_logger
from models import Deployment, DeploymentEvent, Outbox

log = get_logger(__name__)
UNSENT = (OutboxState.PENDING, OutboxState.SENDING)
STATEMENT_TIMEOUT_MS = 2000  # a scrape must never hold a connection for long (PostgreSQL only)


@dataclass
class DatabaseGauges:
    """One reading of the database's gauges."""

    active: dict[tuple[DeploymentStatus, Strategy], int] = field(default_factory=dict)
    awaiting_since: list[datetime] = field(default_factory=list)  # per awaiting deployment: when its pause began
    outbox: dict[OutboxState, int] = field(default_factory=dict)
    oldest_unsent: datetime | None = None


def read_gauges(session: Session) -> DatabaseGauges:
    """Active deployments by status and strategy, approvals waiting and since when, the unsent outbox."""
    gauges = DatabaseGauges()
    by_status = (
        select(Deployment.status, Deployment.strategy, func.count())
        .where(Deployment.status.in_(ACTIVE_STATUSES))
        .group_by(Deployment.status, Deployment.strategy)
    )
    for status, strategy, count in session.execute(by_status):
        gauges.active[(status, strategy)] = count
    pauses = (
        select(func.max(DeploymentEvent.at))
        .join(Deployment, Deployment.id == DeploymentEvent.deployment_id)
        .where(Deployment.status == DeploymentStatus.AWAITING_APPROVAL, DeploymentEvent.kind == EventKind.HOOK_AWAITING)
        .group_by(Deployment.id)
    )
    gauges.awaiting_since = [at for (at,) in session.execute(pauses) if at is not None]
    unsent = (
        select(Outbox.state, func.count(), func.min(Outbox.created_at))
        .where(Outbox.state.in_(UNSENT))
        .group_by(Outbox.state)
    )
    for state, count, oldest in session.execute(unsent):
        gauges.outbox[state] = count
        gauges.oldest_unsent = oldest if gauges.oldest_unsent is None else min(oldest, gauges.oldest_unsent)
    return gauges


def _gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


def families(gauges: DatabaseGauges, now: datetime) -> list[Metric]:
    """The Prometheus families for one reading; every label combination is present, zeros included."""
    active = _gauge(
        "deploybot_deployments_active", "Active deployments, by status and strategy", ("status", "strategy")
    )
    for status in sorted(ACTIVE_STATUSES):
        for strategy in Strategy:
            active.add_metric([status.value, strategy.value], gauges.active.get((status, strategy), 0))
    waiting = _gauge("deploybot_approvals_waiting", "Deployments paused for an approval")
    waiting.add_metric([], len(gauges.awaiting_since))
    oldest_wait = _gauge(
        "deploybot_approval_oldest_wait_seconds", "How long the longest-waiting approval has waited (0: none waits)"
    )
    oldest_wait.add_metric([], max(((now - at).total_seconds() for at in gauges.awaiting_since), default=0.0))
    depth = _gauge("deploybot_outbox_depth", "Slack messages not sent yet, by state", ("state",))
    for state in UNSENT:
        depth.add_metric([state.value.lower()], gauges.outbox.get(state, 0))
    age = _gauge("deploybot_outbox_oldest_unsent_age_seconds", "Age of the oldest unsent Slack message (0: none)")
    age.add_metric([], (now - gauges.oldest_unsent).total_seconds() if gauges.oldest_unsent else 0.0)
    return [active, waiting, oldest_wait, depth, age]


class DatabaseCollector(Collector):
    """Reads the gauges at each scrape; if the database does not answer, says so instead of failing /metrics."""

    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> None:
        self.sessions = sessions
        self.clock = clock

    def describe(self) -> list[Metric]:
        """Nothing up front: describing would query the database at registration."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The database's gauges, whether the database answered, and how long the queries took."""
        started = time.monotonic()
        up = _gauge("deploybot_metrics_database_up", "1 if the last scrape could read the database's gauges")
        took = _gauge("deploybot_metrics_database_seconds", "Time the last scrape spent reading the database")
        try:
            with transaction(self.sessions) as session:
                if is_postgres(session):
                    session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
                gauges = read_gauges(session)
        except Exception as exc:  # /metrics must still answer: the failure is itself a metric
            log.warning("cannot read the database's gauges for /metrics", error=str(exc))
            up.add_metric([], 0)
        else:
            yield from families(gauges, self.clock())
            up.add_metric([], 1)
        took.add_metric([], time.monotonic() - started)
        yield up
        yield took


class _Everything(Collector):
    """The process's own metrics (the default registry)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def scrape_registry(sessions: sessionmaker[Session], clock: Callable[[], datetime]) -> CollectorRegistry:
    """What /metrics serves: the process's counters and histograms, and this database's gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Everything())
    registry.register(DatabaseCollector(sessions, clock))
    return registry
