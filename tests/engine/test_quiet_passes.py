"""Passes that find nothing new write nothing but the lease; reminders are still told, once each."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from bot.domain.enums import DeploymentStatus, EventKind, OutboxKind
from bot.domain.grammar import parser as grammar
from bot.domain.outbox import event_key
from models import Deployment, DeploymentEvent, Outbox, utcnow
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()


def deploy(h: Harness, text: str) -> int:
    answer = h.usecases.handle(actor("U0ALICE", "C0DEPLOYS"), grammar.parse(text, CATALOG))
    assert answer.ok and answer.deployment_id is not None, answer.text
    return answer.deployment_id


def row(h: Harness, dep: int) -> tuple[int, datetime, str | None, datetime | None]:
    with h.sessions() as session:
        d = session.get_one(Deployment, dep)
        return d.version, d.updated_at, d.lease_owner, d.lease_until


def counts(h: Harness, dep: int) -> tuple[int, int, int]:
    """(events, REMINDER events, root updates queued) of one deployment."""
    with h.sessions() as session:
        events = session.scalar(select(func.count()).where(DeploymentEvent.deployment_id == dep))
        reminders = session.scalar(
            select(func.count()).where(DeploymentEvent.deployment_id == dep, DeploymentEvent.kind == EventKind.REMINDER)
        )
        roots = session.scalar(
            select(func.count()).where(Outbox.deployment_id == dep, Outbox.kind == OutboxKind.UPDATE_ROOT)
        )
        return int(events or 0), int(reminders or 0), int(roots or 0)


def waiting(h: Harness) -> int:
    dep = deploy(h, "catalog canary 10%")
    h.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    h.usecases.reconciler.reconcile_once()  # the pause seen twice: nothing new from here on
    return dep


def test_a_pass_with_nothing_new_leaves_the_row_as_it_was_and_releases_the_lease(harness: Harness) -> None:
    dep = waiting(harness)
    version, updated, _, _ = row(harness, dep)
    before = counts(harness, dep)
    for _ in range(3):
        report = harness.usecases.reconciler.reconcile_once()
        assert report.claimed == 1 and report.described == 1 and not report.errors
        assert row(harness, dep)[:3] == (version, updated, None)  # no write but the lease, which is released
    assert counts(harness, dep) == before
    assert harness.view(dep).status is DeploymentStatus.AWAITING_APPROVAL


def test_a_change_after_quiet_passes_is_seen_at_once(harness: Harness) -> None:
    dep = waiting(harness)
    harness.usecases.reconciler.reconcile_once()
    version = row(harness, dep)[0]
    assert harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep).ok
    view = harness.run_until(dep, lambda v: v.status is not DeploymentStatus.AWAITING_APPROVAL or not v.is_active)
    assert view.status is not DeploymentStatus.AWAITING_APPROVAL
    assert row(harness, dep)[0] > version
    assert [e.detail["user"] for e in view.events if e.kind is EventKind.DECISION] == ["U0BOB"]


def test_a_due_reminder_is_stored_and_told_once_however_many_passes_see_it(harness: Harness) -> None:
    dep = waiting(harness)
    later = utcnow() + CATALOG.services["catalog"].reminder_interval + timedelta(minutes=1)
    harness.usecases.deployments.clock = lambda: later
    harness.usecases.reconciler.reconcile_once()
    events, reminders, roots = counts(harness, dep)
    assert reminders == 1
    version = row(harness, dep)[0]
    for _ in range(3):
        harness.usecases.reconciler.reconcile_once()
    assert counts(harness, dep) == (events, 1, roots)  # no second reminder, no root update per pass
    assert row(harness, dep)[0] == version
    with harness.sessions() as session:
        replies = session.scalars(select(Outbox.idempotency_key).where(Outbox.deployment_id == dep)).all()
    assert replies.count(event_key(dep, _reminder_id(harness, dep))) == 1  # its thread reply, queued once


def _reminder_id(h: Harness, dep: int) -> int:
    with h.sessions() as session:
        return int(
            session.scalars(
                select(DeploymentEvent.id).where(
                    DeploymentEvent.deployment_id == dep, DeploymentEvent.kind == EventKind.REMINDER
                )
            ).one()
        )
