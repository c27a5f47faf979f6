"""write_versioned: many rows of a versioned class in one version-checked executemany, on each backend."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from bot.db.versioned import write_versioned
from bot.domain.enums import DeploymentStatus, LifecycleStage, Strategy
from models import Deployment


def _deployments(sessions: sessionmaker[Session], count: int) -> list[int]:
    with sessions.begin() as session:
        rows = [
            Deployment(
                service_key=f"svc-{i}",
                cluster="unicorn-watch",
                service=f"svc-{i}",
                region="us-east-1",
                strategy=Strategy.CANARY,
                status=DeploymentStatus.IN_PROGRESS,
                requested_by="U0ALICE",
                channel_id="C0DEPLOYS",
                tracked={"n": i},
            )
            for i in range(count)
        ]
        session.add_all(rows)
        session.flush()
        return [d.id for d in rows]


def _updates(engine: Engine) -> list[tuple[str, int]]:
    """Every UPDATE of deployments sent from now on: (statement, how many parameter sets)."""
    seen: list[tuple[str, int]] = []

    def on(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool) -> None:
        if statement.startswith("UPDATE deployments"):
            seen.append((statement, len(parameters) if many else 1))

    event.listen(engine, "before_cursor_execute", on)
    return seen


def _change(dep: Deployment, i: int) -> None:
    # Different columns per row: the ORM's flush would send one UPDATE per shape, here one per row.
    if i % 2:
        dep.lifecycle_stage = LifecycleStage.SCALE_UP
    else:
        dep.tracked = {**dep.tracked, "seen": True}
    dep.lease_owner = None


def test_rows_changed_in_different_columns_are_written_in_one_statement(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    ids = _deployments(sessions, 5)
    seen = _updates(engine)
    with sessions.begin() as session:
        deps = list(session.scalars(select(Deployment).where(Deployment.id.in_(ids)).order_by(Deployment.id)))
        for i, dep in enumerate(deps):
            _change(dep, i)
        write_versioned(session, deps)
        assert [d.version for d in deps] == [2] * 5  # as the flush leaves them
        session.flush()  # nothing left pending: no second UPDATE, no second version bump
    assert len(seen) == 1 and seen[0][1] == 5, seen
    with sessions() as session:
        stored = list(session.scalars(select(Deployment).where(Deployment.id.in_(ids)).order_by(Deployment.id)))
    assert [d.version for d in stored] == [2] * 5
    assert [d.lifecycle_stage for d in stored] == [None, LifecycleStage.SCALE_UP] * 2 + [None]
    assert [d.tracked.get("seen") for d in stored] == [True, None, True, None, True]
    assert all(d.updated_at > d.created_at for d in stored)  # the flush's onupdate, filled here too


@pytest.mark.parametrize("stale", [[0], [2], [1, 3]])
def test_a_row_changed_since_it_was_read_fails_the_whole_write(
    engine: Engine, sessions: sessionmaker[Session], stale: list[int]
) -> None:
    # Both drivers sum an executemany's rowcount (sqlite3, psycopg 3): one row short anywhere must be seen.
    ids = _deployments(sessions, 4)
    with pytest.raises(StaleDataError, match=f"{len(stale)} of 4 rows"), sessions.begin() as session:
        deps = list(session.scalars(select(Deployment).where(Deployment.id.in_(ids)).order_by(Deployment.id)))
        bumped = [ids[i] for i in stale]  # another writer's UPDATE, as seen by this transaction
        session.execute(
            update(Deployment)
            .where(Deployment.id.in_(bumped))
            .values(version=Deployment.version + 1)
            .execution_options(synchronize_session=False)
        )
        for i, dep in enumerate(deps):
            _change(dep, i)
        write_versioned(session, deps)
    with sessions() as session:  # rolled back: nobody's change is half-written
        stored = list(session.scalars(select(Deployment).where(Deployment.id.in_(ids))))
    assert {d.version for d in stored} == {1} and {d.lifecycle_stage for d in stored} == {None}


def test_nothing_to_write_sends_nothing(engine: Engine, sessions: sessionmaker[Session]) -> None:
    seen = _updates(engine)
    with sessions.begin() as session:
        write_versioned(session, [])
    assert seen == []
