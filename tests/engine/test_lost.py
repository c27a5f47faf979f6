"""Deployments ECS has forgotten end LOST after a few passes, say so, and free the service (issue 10 item 4)."""

from __future__ import annotations

from sqlalchemy import select

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from bot.domain.machine.lost import LOST_AFTER
from bot.domain.outbox import event_key
from models import Outbox
from tests.engine.test_engine import CATALOG, awaiting, deploy, kinds
from tests.support import Harness, actor


def _passes(h: Harness, n: int) -> None:
    for _ in range(n):
        h.usecases.reconciler.reconcile_once()


def test_a_deployment_whose_record_disappears_ends_lost_and_the_service_takes_a_new_one(harness: Harness) -> None:
    dep = deploy(harness, "catalog canary 10%")
    view = harness.run_until(dep, awaiting)
    harness.control.post("forget", {"deployment": view.ecs_deployment_arn})
    _passes(harness, LOST_AFTER - 1)
    assert harness.view(dep).is_active  # one or two misses could be ECS catching up: keep following it
    _passes(harness, 1)
    lost = harness.view(dep)
    assert lost.status is DeploymentStatus.LOST and lost.finished_at is not None
    (finished,) = kinds(lost, EventKind.FINISHED)
    assert (finished["outcome"], finished["missing_passes"]) == ("LOST", LOST_AFTER)
    with harness.sessions() as session:
        keys = set(session.scalars(select(Outbox.idempotency_key).where(Outbox.deployment_id == dep)))
    finished_id = next(e.id for e in lost.events if e.kind is EventKind.FINISHED)
    assert event_key(dep, finished_id) in keys  # the thread is told
    # /deploy rollback explains instead of relaying "Service deployment not found"
    answer = harness.usecases.handle(actor("U0CAROL", "C0INC42"), grammar.parse("rollback catalog", CATALOG))
    assert not answer.ok and "no longer knows" in answer.text and "not found" not in answer.text
    assert harness.control.calls("StopServiceDeployment") == []
    again = deploy(harness, "catalog canary 10%")
    assert harness.run_until(again, awaiting).ecs_deployment_arn


def test_a_deleted_service_ends_its_deployment_lost(harness: Harness) -> None:
    dep = deploy(harness, "notifications bluegreen image=:3.5.0")
    harness.run_until(dep, lambda v: v.ecs_deployment_arn is not None and v.lifecycle_stage is not None)
    harness.control.post("delete-service", {"service": "notifications", "cluster": "unicorn-watch"})
    # A rollback asked before the bot gave up is explained too, not relayed.
    answer = harness.usecases.decisions.rollback(actor("U0CAROL", "C0INC42"), dep, None, "gone")
    assert not answer.ok and "no longer knows" in answer.text, answer.text
    _passes(harness, LOST_AFTER)
    assert harness.view(dep).status is DeploymentStatus.LOST


def test_a_deployment_found_again_counts_its_misses_afresh(harness: Harness) -> None:
    from models import Deployment

    dep = deploy(harness, "catalog canary 10%")
    harness.run_until(dep, awaiting)
    with harness.sessions.begin() as session:
        row = session.get_one(Deployment, dep)
        row.tracked = {**row.tracked, "missing_passes": LOST_AFTER - 1}
    _passes(harness, 1)
    with harness.sessions() as session:
        assert "missing_passes" not in session.get_one(Deployment, dep).tracked
    assert harness.view(dep).is_active
