"""A reconcile pass that loses a deployment row's version check to another writer (a decision being recorded on
the click path, another replica) writes it again from the fresh row in the same pass: no error, no pass lost."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event

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

    def another_writer_wins(_cursor: Any, _rows: int) -> None:
        if len(won) < 2:
            won.append(dep)
            with session_factory(other).begin() as theirs:  # as the click path records a decision
                theirs.get_one(Deployment, dep).updated_at = utcnow()

    try:
        with before_versioned_writes(harness.sessions.kw["bind"], another_writer_wins):
            report = harness.usecases.reconciler.reconcile_once()
    finally:
        other.dispose()
    assert won == [dep, dep]  # the batch's write and the one-by-one write both lost
    assert report.errors == []
    view = harness.view(dep)  # this very pass stored what ECS showed: the rolling update had finished
    assert view.status is DeploymentStatus.SUCCEEDED and EventKind.FINISHED in {e.kind for e in view.events}


def test_a_batch_whose_row_moved_on_since_it_was_read_is_written_one_by_one_and_nothing_is_lost(
    harness: Harness,
) -> None:
    # The batch's rows go in one version-checked executemany (bot/db/versioned.py); one row short of its version
    # must fail the batch, not store its events beside a row left as it was. Here the other writer's bump runs in
    # the batch's own transaction just before that statement (SQLite has one writer): the batch rolls back, bump
    # included, and is written again one by one.
    ids = []
    for line in ("orders image=:2.0.0", "notifications image=:2.0.0"):
        answer = harness.usecases.handle(actor(), grammar.parse(line, CATALOG))
        assert answer.ok and answer.deployment_id is not None, answer.text
        ids.append(answer.deployment_id)
    harness.control.advance(60)  # ECS has moved both on: the pass has events to write for each
    batches: list[int] = []

    def bump_the_first(cursor: Any, rows: int) -> None:
        if not batches:
            raw = cursor.connection.cursor()
            mark = "?" if "sqlite" in type(raw).__module__ else "%s"
            raw.execute(f"UPDATE deployments SET version = version + 1 WHERE id = {mark}", (ids[0],))
            raw.close()
        batches.append(rows)

    with before_versioned_writes(harness.sessions.kw["bind"], bump_the_first):
        report = harness.usecases.reconciler.reconcile_once()
    assert report.errors == []
    assert batches == [2, 1, 1]  # the batch (both rows, one statement), then each deployment alone
    orders, notifications = harness.view(ids[0]), harness.view(ids[1])
    assert orders.status is DeploymentStatus.SUCCEEDED and EventKind.FINISHED in {e.kind for e in orders.events}
    assert notifications.lifecycle_stage is not None and len(notifications.events) > 1


@contextmanager
def before_versioned_writes(engine: Engine, hook: Callable[[Any, int], None]) -> Iterator[None]:
    """Call `hook(cursor, rows)` just before each versioned UPDATE of deployments (write_versioned) is sent."""

    def on(_conn: Any, cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("UPDATE deployments SET") and "version=(deployments.version +" in statement:
            hook(cursor, len(parameters) if many else 1)

    event.listen(engine, "before_cursor_execute", on)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", on)
