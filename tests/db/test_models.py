"""The database itself refuses what must never happen twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.enums import DecisionKind, DeploymentStatus, EventKind, OutboxKind, Strategy
from models import Decision, Deployment, DeploymentEvent, Outbox, ServiceLock


def _deployment(service_key: str = "catalog", status: DeploymentStatus = DeploymentStatus.IN_PROGRESS) -> Deployment:
    return Deployment(
        service_key=service_key,
        cluster="unicorn-watch",
        service=service_key,
        region="us-east-1",
        strategy=Strategy.CANARY,
        canary_percent=10.0,
        status=status,
        requested_by="U0ALICE",
        channel_id="C0DEPLOYS",
    )


def _add(sessions: sessionmaker[Session], *rows: object) -> None:
    with sessions.begin() as session:
        session.add_all(rows)


def test_same_event_key_is_refused(sessions: sessionmaker[Session]) -> None:
    dep = _deployment()
    _add(sessions, dep)
    _add(
        sessions,
        DeploymentEvent(
            deployment_id=dep.id, service_key="catalog", key="stage:SCALE_UP", kind=EventKind.STAGE_ENTERED
        ),
    )
    with pytest.raises(IntegrityError):
        _add(
            sessions,
            DeploymentEvent(
                deployment_id=dep.id, service_key="catalog", key="stage:SCALE_UP", kind=EventKind.STAGE_ENTERED
            ),
        )
    with sessions() as session:
        assert session.scalars(select(DeploymentEvent)).all()[0].key == "stage:SCALE_UP"


def test_second_decision_on_the_same_hook_is_refused(sessions: sessionmaker[Session]) -> None:
    dep = _deployment()
    _add(sessions, dep)
    first = Decision(
        deployment_id=dep.id, hook_id="ecs-pause-1", kind=DecisionKind.APPROVE, user_id="U0BOB", source="button"
    )
    _add(sessions, first)
    with pytest.raises(IntegrityError):
        _add(
            sessions,
            Decision(
                deployment_id=dep.id,
                hook_id="ecs-pause-1",
                kind=DecisionKind.ROLLBACK,
                user_id="U0CAROL",
                source="command",
            ),
        )
    _add(
        sessions,
        Decision(
            deployment_id=dep.id, hook_id="ecs-pause-2", kind=DecisionKind.APPROVE, user_id="U0BOB", source="button"
        ),
    )


def test_one_active_deployment_per_service(sessions: sessionmaker[Session]) -> None:
    _add(
        sessions,
        _deployment("catalog", DeploymentStatus.SUCCEEDED),
        _deployment("catalog", DeploymentStatus.ROLLED_BACK),
    )
    _add(sessions, _deployment("catalog", DeploymentStatus.AWAITING_APPROVAL))
    with pytest.raises(IntegrityError):
        _add(sessions, _deployment("catalog", DeploymentStatus.REQUESTED))
    _add(sessions, _deployment("ui", DeploymentStatus.REQUESTED))


def test_outbox_idempotency_key_is_unique(sessions: sessionmaker[Session]) -> None:
    row = {"idempotency_key": "dep:1:root", "kind": OutboxKind.POST, "channel_id": "C0DEPLOYS"}
    _add(sessions, Outbox(**row))
    with pytest.raises(IntegrityError):
        _add(sessions, Outbox(**row))


def test_timestamps_come_back_timezone_aware(sessions: sessionmaker[Session]) -> None:
    until = datetime(2026, 11, 26, 15, 0, tzinfo=UTC) + timedelta(hours=1)
    _add(sessions, ServiceLock(service_key="orders", locked_by="U0CAROL", reason="incident 42", until=until))
    with sessions() as session:
        lock = session.get(ServiceLock, "orders")
        assert lock is not None
        assert lock.until == until and lock.until.tzinfo is not None
        assert lock.locked_at.tzinfo is not None


def test_naive_timestamps_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        _add(sessions, ServiceLock(service_key="orders", locked_by="U0CAROL", until=datetime(2026, 1, 1)))


def test_version_column_detects_a_concurrent_write(sessions: sessionmaker[Session]) -> None:
    dep = _deployment()
    _add(sessions, dep)
    with sessions() as first, sessions() as second:
        b = second.get(Deployment, dep.id)
        second.commit()  # b stays loaded (expire_on_commit=False), as in a handler that rendered it
        a = first.get(Deployment, dep.id)
        assert a is not None and b is not None
        a.status = DeploymentStatus.AWAITING_APPROVAL
        first.commit()
        b.status = DeploymentStatus.ROLLING_BACK
        with pytest.raises(Exception, match="expected to update 1 row"):
            second.commit()
    with sessions() as session:
        stored = session.get(Deployment, dep.id)
        assert stored is not None and stored.status is DeploymentStatus.AWAITING_APPROVAL and stored.version == 2


def test_enums_are_stored_by_value(sessions: sessionmaker[Session]) -> None:
    _add(sessions, _deployment())
    with sessions() as session:
        raw = session.connection().exec_driver_sql("SELECT strategy, status FROM deployments").one()
    assert tuple(raw) == ("CANARY", "IN_PROGRESS")
