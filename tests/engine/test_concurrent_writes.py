"""A reconcile pass that loses a deployment row's version check to another writer (a decision being recorded on
the click path, another replica) writes it again from the fresh row in the same pass: no error, no pass lost."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from bot.db.sessions import make_engine, session_factory
from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from models import Deployment, utcnow
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()


def test_a_pass_that_loses_the_version_check_twice_writes_the_deployment_from_the_fresh_row(
    harness: Harness, database_url: str
) -> None:
    # Found by tests/reliability/test_replicas.py: the batch's write lost to a decision being recorded, the
    # one-by-one write lost again, and the pass logged "reconcile step failed" (an ERROR, with its traceback).
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): concurrent writers race on PostgreSQL")
    answer = harness.usecases.handle(actor(), grammar.parse("orders image=:2.0.0", CATALOG))
    assert answer.ok and answer.deployment_id is not None, answer.text
    dep = answer.deployment_id
    harness.control.advance(60)  # ECS has moved on: the pass has events to write
    other = make_engine(database_url)
    won: list[int] = []

    def another_writer_wins(session: Session, *_: Any) -> None:
        if len(won) < 2 and any(isinstance(d, Deployment) and d.id == dep for d in session.dirty):
            won.append(dep)
            with session_factory(other).begin() as theirs:  # as the click path records a decision
                theirs.get_one(Deployment, dep).updated_at = utcnow()

    event.listen(harness.sessions, "before_flush", another_writer_wins)
    try:
        report = harness.usecases.reconciler.reconcile_once()
    finally:
        event.remove(harness.sessions, "before_flush", another_writer_wins)
        other.dispose()
    assert won == [dep, dep]  # the batch's write and the one-by-one write both lost
    assert report.errors == []
    view = harness.view(dep)  # this very pass stored what ECS showed: the rolling update had finished
    assert view.status is DeploymentStatus.SUCCEEDED and EventKind.FINISHED in {e.kind for e in view.events}
