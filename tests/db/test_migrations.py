"""Migrations run both ways on both databases, and the models match them exactly."""

from __future__ import annotations

import os
import subprocess
import sys
from subprocess import PIPE

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from bot.db import migrate
from bot.db.sessions import make_engine
from models import Base

TABLES = {"deployments", "deployment_events", "decisions", "service_locks", "outbox", "slack_pace", "alembic_version"}


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    assert migrate.current_revision(engine) == migrate.head_revision()
    migrate.downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    assert migrate.current_revision(engine) is None
    migrate.upgrade(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    engine.dispose()


def test_autogenerate_finds_no_drift(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
    engine.dispose()


def test_indexes_serve_the_bot_queries(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    indexes = {ix["name"]: ix for ix in inspect(engine).get_indexes("deployments")}
    assert indexes["ix_deployments_service_created"]["column_names"] == ["service_key", "created_at"]
    assert indexes["ix_deployments_requester_created"]["column_names"] == ["requested_by", "created_at"]
    assert indexes["ix_deployments_status_lease"]["column_names"] == ["status", "lease_until"]
    assert indexes["uq_deployments_one_active_per_service"]["unique"]
    engine.dispose()


def test_two_replicas_migrating_at_once_both_succeed(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url}
    replicas = [
        subprocess.Popen([sys.executable, "-m", "bot.cli", "migrate"], env=env, stdout=PIPE, stderr=PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=120) for r in replicas]
    assert [r.returncode for r in replicas] == [0, 0], outputs
    engine = make_engine(database_url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()
