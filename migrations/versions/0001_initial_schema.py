"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("cluster", sa.String(length=255), nullable=False),
        sa.Column("service", sa.String(length=255), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("role_arn", sa.String(length=2048), nullable=True),
        sa.Column(
            "strategy",
            sa.Enum("ROLLING", "BLUE_GREEN", "CANARY", "LINEAR", name="strategy", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("canary_percent", sa.Double(), nullable=True),
        sa.Column("linear_step_percent", sa.Double(), nullable=True),
        sa.Column("canary_bake_seconds", sa.Integer(), nullable=True),
        sa.Column("step_bake_seconds", sa.Integer(), nullable=True),
        sa.Column("bake_seconds", sa.Integer(), nullable=True),
        sa.Column("approval_stages", sa.JSON(), nullable=False),
        sa.Column("image_from", sa.String(length=1024), nullable=True),
        sa.Column("image_to", sa.String(length=1024), nullable=True),
        sa.Column("taskdef_from", sa.String(length=2048), nullable=True),
        sa.Column("taskdef_to", sa.String(length=2048), nullable=True),
        sa.Column("ecs_deployment_arn", sa.String(length=2048), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "REQUESTED",
                "IN_PROGRESS",
                "AWAITING_APPROVAL",
                "ROLLING_BACK",
                "SUCCEEDED",
                "ROLLED_BACK",
                "ROLLBACK_FAILED",
                "STOPPED",
                "SUPERSEDED",
                "FAILED",
                name="deploymentstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "ecs_status",
            sa.Enum(
                "PENDING",
                "IN_PROGRESS",
                "SUCCESSFUL",
                "STOP_REQUESTED",
                "STOPPED",
                "ROLLBACK_REQUESTED",
                "ROLLBACK_IN_PROGRESS",
                "ROLLBACK_SUCCESSFUL",
                "ROLLBACK_FAILED",
                name="ecsstatus",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column(
            "lifecycle_stage",
            sa.Enum(
                "RECONCILE_SERVICE",
                "PRE_SCALE_UP",
                "SCALE_UP",
                "POST_SCALE_UP",
                "TEST_TRAFFIC_SHIFT",
                "POST_TEST_TRAFFIC_SHIFT",
                "PRODUCTION_TRAFFIC_SHIFT",
                "POST_PRODUCTION_TRAFFIC_SHIFT",
                "BAKE_TIME",
                "CLEAN_UP",
                name="lifecyclestage",
                native_enum=False,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("production_weight", sa.Double(), nullable=True),
        sa.Column("test_weight", sa.Double(), nullable=True),
        sa.Column("tracked", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("root_ts", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("rollback_of_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollback_of_id"], ["deployments.id"], name=op.f("fk_deployments_rollback_of_id_deployments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("ecs_deployment_arn", name=op.f("uq_deployments_ecs_deployment_arn")),
    )
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.create_index("ix_deployments_requester_created", ["requested_by", "created_at"], unique=False)
        batch_op.create_index("ix_deployments_service_created", ["service_key", "created_at"], unique=False)
        batch_op.create_index("ix_deployments_status_lease", ["status", "lease_until"], unique=False)
        batch_op.create_index(
            "uq_deployments_one_active_per_service",
            ["service_key"],
            unique=True,
            sqlite_where=sa.text("status IN ('AWAITING_APPROVAL', 'IN_PROGRESS', 'REQUESTED', 'ROLLING_BACK')"),
            postgresql_where=sa.text("status IN ('AWAITING_APPROVAL', 'IN_PROGRESS', 'REQUESTED', 'ROLLING_BACK')"),
        )

    op.create_table(
        "service_locks",
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("locked_by", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("service_key", name=op.f("pk_service_locks")),
    )
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=False),
        sa.Column("hook_id", sa.String(length=128), nullable=False),
        sa.Column(
            "kind", sa.Enum("APPROVE", "ROLLBACK", name="decisionkind", native_enum=False, length=32), nullable=False
        ),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_decisions_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("deployment_id", "hook_id", name=op.f("uq_decisions_deployment_id_hook_id")),
    )
    op.create_table(
        "deployment_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column("service_key", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "ACCEPTED",
                "STARTED",
                "START_FAILED",
                "STAGE_ENTERED",
                "STAGE_PASSED",
                "TRAFFIC_MOVED",
                "HOOK_AWAITING",
                "HOOK_RESOLVED",
                "BAKE_STARTED",
                "ROLLBACK_STARTED",
                "FINISHED",
                "DECISION",
                "REFUSED",
                "REMINDER",
                "LOCKED",
                "UNLOCKED",
                name="eventkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("stage", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(length=32), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_events_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_events")),
        sa.UniqueConstraint("deployment_id", "key", name=op.f("uq_deployment_events_deployment_id_key")),
    )
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.create_index("ix_deployment_events_service_at", ["service_key", "at"], unique=False)

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("deployment_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("POST", "UPDATE_ROOT", "EPHEMERAL", name="outboxkind", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("channel_id", sa.String(length=32), nullable=False),
        sa.Column("thread_ts", sa.String(length=32), nullable=True),
        sa.Column("in_thread", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("PENDING", "SENDING", "SENT", "FAILED", name="outboxstate", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.DateTime(timezone=True), nullable=False),
        sa.Column("slack_ts", sa.String(length=32), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deployment_id"], ["deployments.id"], name=op.f("fk_outbox_deployment_id_deployments"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_idempotency_key")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_state_not_before", ["state", "not_before"], unique=False)
        batch_op.create_index(
            "ix_outbox_unsent_by_deployment",
            ["deployment_id", "id"],
            unique=False,
            postgresql_where=sa.text("state IN ('PENDING', 'SENDING')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_unsent_by_deployment", postgresql_where=sa.text("state IN ('PENDING', 'SENDING')")
        )
        batch_op.drop_index("ix_outbox_state_not_before")

    op.drop_table("outbox")
    with op.batch_alter_table("deployment_events", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment_events_service_at")

    op.drop_table("deployment_events")
    op.drop_table("decisions")
    op.drop_table("service_locks")
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_deployments_one_active_per_service",
            sqlite_where=sa.text("status IN ('AWAITING_APPROVAL', 'IN_PROGRESS', 'REQUESTED', 'ROLLING_BACK')"),
            postgresql_where=sa.text("status IN ('AWAITING_APPROVAL', 'IN_PROGRESS', 'REQUESTED', 'ROLLING_BACK')"),
        )
        batch_op.drop_index("ix_deployments_status_lease")
        batch_op.drop_index("ix_deployments_service_created")
        batch_op.drop_index("ix_deployments_requester_created")

    op.drop_table("deployments")
