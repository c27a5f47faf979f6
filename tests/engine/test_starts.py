"""A /deploy (or a rollback's redeploy) that ECS throttles or fails is queued and started once, never refused."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from bot.engine.starts import QUEUED
from models import Deployment
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()


def fault(h: Harness, operation: str, code: str = "ThrottlingException", rate: float = 1, **extra: Any) -> None:
    h.control.post("fault", {"operation": operation, "code": code, "rate": rate, **extra})


def due(h: Harness, dep: int) -> None:
    """Let the queued start's back-off run out."""
    with h.sessions.begin() as session:
        session.get_one(Deployment, dep).lease_until = None


def queued_deploy(h: Harness, text: str) -> int:
    answer = h.usecases.handle(actor(), grammar.parse(text, CATALOG))
    assert answer.ok and QUEUED in answer.text, answer.text  # a delay, said as one: never "nothing was started"
    assert answer.deployment_id is not None
    assert h.view(answer.deployment_id).status is DeploymentStatus.REQUESTED
    return answer.deployment_id


def started_once(h: Harness, dep: int) -> None:
    due(h, dep)
    h.usecases.reconciler.reconcile_once()
    view = h.view(dep)
    assert view.ecs_deployment_arn and view.status is not DeploymentStatus.REQUESTED
    assert [e.kind for e in view.events].count(EventKind.STARTED) == 1


@pytest.mark.parametrize("code", ["ThrottlingException", "ServerException"])
def test_a_deploy_ecs_cannot_read_for_is_queued_and_started_once_it_can(harness: Harness, code: str) -> None:
    fault(harness, "DescribeServices", code)
    dep = queued_deploy(harness, "orders image=:2.0.0")
    assert harness.control.calls("UpdateService") == []
    harness.usecases.reconciler.reconcile_once()  # still failing: still queued, never failed
    assert harness.view(dep).status is DeploymentStatus.REQUESTED
    fault(harness, "DescribeServices", code, rate=0)
    started_once(harness, dep)
    assert len(harness.control.calls("UpdateService")) == 1
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED and done.image_from and done.taskdef_from


def test_a_throttled_update_service_is_retried_and_ecs_starts_one_deployment(harness: Harness) -> None:
    fault(harness, "UpdateService")
    dep = queued_deploy(harness, "orders image=:2.0.0")
    fault(harness, "UpdateService", rate=0)
    started_once(harness, dep)
    updates = harness.control.calls("UpdateService")
    assert [c["error"] for c in updates if c["error"] is None] == [None]
    assert len(harness.control.calls("RegisterTaskDefinition")) == 1  # the image registered once, reused


def test_an_update_service_that_landed_behind_a_500_is_not_sent_again(harness: Harness) -> None:
    fault(harness, "UpdateService", "ServerException", after=True)
    dep = queued_deploy(harness, "orders")
    assert len(harness.control.calls("UpdateService")) == 1  # the gateway never resends a change after a 5xx
    fault(harness, "UpdateService", "ServerException", rate=0, after=True)
    started_once(harness, dep)
    assert len(harness.control.calls("UpdateService")) == 1  # ECS was asked first: it had it
    assert harness.run_until(dep, lambda v: not v.is_active).status is DeploymentStatus.SUCCEEDED


def test_a_rollback_redeploy_ecs_cannot_start_yet_is_queued_too(harness: Harness) -> None:
    answer = harness.usecases.handle(actor(), grammar.parse("orders image=:2.0.0", CATALOG))
    assert answer.deployment_id is not None
    first = harness.run_until(answer.deployment_id, lambda v: not v.is_active)
    assert first.status is DeploymentStatus.SUCCEEDED
    fault(harness, "DescribeServices")
    back = harness.usecases.handle(actor("U0CAROL"), grammar.parse("rollback orders", CATALOG))
    assert back.ok and QUEUED in back.text, back.text
    assert back.deployment_id is not None
    fault(harness, "DescribeServices", rate=0)
    started_once(harness, back.deployment_id)
    view = harness.view(back.deployment_id)
    assert view.taskdef_to == first.taskdef_from


def test_a_crash_right_after_update_service_is_found_on_ecs_not_sent_again(harness: Harness) -> None:
    from bot.engine.starts import Starts

    real = Starts._save

    def die_after_sending(self: Starts, dep_id: int, **fields: object) -> None:
        if fields.get("update_sent") is True:
            raise KeyboardInterrupt("killed between UpdateService and recording it")
        real(self, dep_id, **fields)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(Starts, "_save", die_after_sending)
        harness.usecases.handle(actor(), grammar.parse("orders", CATALOG))
    with harness.sessions() as session:
        dep = session.query(Deployment).one().id
    harness.usecases.reconciler.reconcile_once()
    view = harness.view(dep)
    assert view.ecs_deployment_arn and len(harness.control.calls("UpdateService")) == 1
    assert harness.run_until(dep, lambda v: not v.is_active).status is DeploymentStatus.SUCCEEDED


@pytest.mark.parametrize("write", ["update_sent", "attach"])
def test_a_start_another_replica_attaches_meanwhile_is_still_answered_as_started(
    harness: Harness, database_url: str, write: str
) -> None:
    # Found by tests/reliability/test_replicas.py: another replica's reconciler finds the deployment on ECS (it was
    # asked for) and attaches it while the request path writes the same row; the request path lost the version
    # check and told the person "Deploy failed" about a deployment ECS had started.
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from bot.db.sessions import make_engine, session_factory
    from tests.support import make_usecases

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): replicas race on PostgreSQL")
    other_engine = make_engine(database_url)
    other = make_usecases(session_factory(other_engine), harness.control.url, CATALOG, owner="replica-b")
    fired: list[int] = []

    def other_replica_writes_first(session: Session, *_: object) -> None:
        for dep in session.dirty:
            mine = dep.ecs_deployment_arn if write == "attach" else dep.tracked.get("update_sent")
            if isinstance(dep, Deployment) and mine and not fired:
                fired.append(dep.id)
                assert other.reconciler.reconcile_once().claimed == 1  # it attaches the deployment it finds

    event.listen(harness.sessions, "before_flush", other_replica_writes_first)
    try:
        answer = harness.usecases.handle(actor(), grammar.parse("orders image=:2.0.0", CATALOG))
    finally:
        event.remove(harness.sessions, "before_flush", other_replica_writes_first)
        other_engine.dispose()
    assert fired, "the other replica never ran"
    assert answer.ok and "is starting" in answer.text, answer.text
    view = harness.view(fired[0])
    assert view.ecs_deployment_arn and [e.kind for e in view.events].count(EventKind.STARTED) == 1
    assert len(harness.control.calls("UpdateService")) == 1
    assert harness.run_until(fired[0], lambda v: not v.is_active).status is DeploymentStatus.SUCCEEDED
