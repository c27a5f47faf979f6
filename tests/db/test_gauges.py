"""The gauges /metrics reads from the database: active deployments, approvals waiting and since when, the outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.core import Metric
from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

from bot.db.gauges import DatabaseCollector, DatabaseGauges, families, read_gauges
from bot.domain.enums import DeploymentStatus, EventKind, OutboxKind, OutboxState, Strategy
from models import Deployment, DeploymentEvent, Outbox

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def deployment(key: str, status: DeploymentStatus, strategy: Strategy = Strategy.CANARY) -> Deployment:
    return Deployment(
        service_key=key,
        cluster="unicorn-watch",
        service=key,
        region="us-east-1",
        strategy=strategy,
        status=status,
        requested_by="U0ALICE",
        channel_id="C0DEPLOYS",
        created_at=T0,
    )


def paused(dep: Deployment, hook: str, at: datetime) -> DeploymentEvent:
    return DeploymentEvent(
        deployment_id=dep.id,
        service_key=dep.service_key,
        key=f"hook:{hook}:AWAITING_ACTION",
        kind=EventKind.HOOK_AWAITING,
        at=at,
    )


def row(key: str, state: OutboxState, at: datetime) -> Outbox:
    return Outbox(idempotency_key=key, kind=OutboxKind.POST, channel_id="C0DEPLOYS", state=state, created_at=at)


def samples(metrics: list[Metric]) -> dict[tuple[str, tuple[str, ...]], float]:
    return {(s.name, tuple(s.labels.values())): s.value for m in metrics for s in m.samples}


def test_read_gauges_counts_what_is_active_waiting_and_unsent(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as s:
        catalog = deployment("catalog", DeploymentStatus.AWAITING_APPROVAL)
        ui = deployment("ui", DeploymentStatus.AWAITING_APPROVAL, Strategy.LINEAR)
        s.add_all([catalog, ui, deployment("cart", DeploymentStatus.IN_PROGRESS, Strategy.BLUE_GREEN)])
        s.add_all(
            [deployment("orders", DeploymentStatus.SUCCEEDED), deployment("orders", DeploymentStatus.ROLLED_BACK)]
        )
        s.flush()
        # catalog passed its first pause and waits at the second since T0+30m; ui waits since T0+10m.
        s.add_all([paused(catalog, "a", T0), paused(catalog, "b", T0 + 30 * MINUTE), paused(ui, "c", T0 + 10 * MINUTE)])
        s.add_all(
            [
                row("old", OutboxState.PENDING, T0 + 5 * MINUTE),
                row("new", OutboxState.PENDING, T0 + 40 * MINUTE),
                row("flying", OutboxState.SENDING, T0 + 20 * MINUTE),
                row("done", OutboxState.SENT, T0),
                row("lost", OutboxState.FAILED, T0),
            ]
        )
    with sessions() as session:
        gauges = read_gauges(session)
    assert gauges.active == {
        (DeploymentStatus.AWAITING_APPROVAL, Strategy.CANARY): 1,
        (DeploymentStatus.AWAITING_APPROVAL, Strategy.LINEAR): 1,
        (DeploymentStatus.IN_PROGRESS, Strategy.BLUE_GREEN): 1,
    }
    assert sorted(gauges.awaiting_since) == [T0 + 10 * MINUTE, T0 + 30 * MINUTE]
    assert gauges.outbox == {OutboxState.PENDING: 2, OutboxState.SENDING: 1}
    assert gauges.oldest_unsent == T0 + 5 * MINUTE

    got = samples(families(gauges, T0 + 60 * MINUTE))
    assert got[("deploybot_deployments_active", ("AWAITING_APPROVAL", "CANARY"))] == 1
    assert got[("deploybot_deployments_active", ("ROLLING_BACK", "ROLLING"))] == 0  # every combination, zeros too
    assert len([k for k in got if k[0] == "deploybot_deployments_active"]) == 4 * 4
    assert got[("deploybot_approvals_waiting", ())] == 2
    assert got[("deploybot_approval_oldest_wait_seconds", ())] == 50 * 60
    assert got[("deploybot_outbox_depth", ("pending",))] == 2
    assert got[("deploybot_outbox_depth", ("sending",))] == 1
    assert got[("deploybot_outbox_oldest_unsent_age_seconds", ())] == 55 * 60


def test_nothing_waiting_reads_as_zeros() -> None:
    got = samples(families(DatabaseGauges(), T0))
    assert got[("deploybot_approvals_waiting", ())] == 0
    assert got[("deploybot_approval_oldest_wait_seconds", ())] == 0
    assert got[("deploybot_outbox_oldest_unsent_age_seconds", ())] == 0
    assert sum(v for (name, _), v in got.items() if name == "deploybot_deployments_active") == 0


def test_an_unreachable_database_is_a_metric_not_a_failed_scrape() -> None:
    broken = sessionmaker(
        create_engine("postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 1})
    )
    got = samples(list(DatabaseCollector(broken, lambda: T0).collect()))
    assert got[("deploybot_metrics_database_up", ())] == 0
    assert not any(name == "deploybot_deployments_active" for name, _ in got)


def test_a_reachable_database_says_so(sessions: sessionmaker[Session]) -> None:
    got = samples(list(DatabaseCollector(sessions, lambda: T0).collect()))
    assert got[("deploybot_metrics_database_up", ())] == 1
    assert got[("deploybot_metrics_database_seconds", ())] >= 0
    assert got[("deploybot_approvals_waiting", ())] == 0
