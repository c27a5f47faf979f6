"""a partial index on the decisions not yet settled: every reconcile pass looks for them to retry

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UNSETTLED = sa.text("applied_at IS NULL AND error IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_decisions_unsettled",
        "decisions",
        ["deployment_id"],
        unique=False,
        sqlite_where=UNSETTLED,
        postgresql_where=UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("ix_decisions_unsettled", table_name="decisions")
