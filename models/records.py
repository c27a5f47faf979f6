"""Decisions on lifecycle hooks, service locks and the Slack outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from bot.domain.enums import ActorSource, DecisionKind, OutboxKind, OutboxState
from models.base import Base, str_enum, utcnow


class Decision(Base):
    """A person's approve / roll back on one lifecycle hook; at most one per (deployment, hook)."""

    __tablename__ = "decisions"
    __table_args__ = (
        UniqueConstraint("deployment_id", "hook_id"),
        # Every reconcile pass asks for the decisions not yet settled (to retry what ECS did not take): a handful,
        # however many decisions history holds.
        Index(
            "ix_decisions_unsettled",
            "deployment_id",
            sqlite_where=text("applied_at IS NULL AND error IS NULL"),
            postgresql_where=text("applied_at IS NULL AND error IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    hook_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[DecisionKind] = mapped_column(str_enum(DecisionKind))
    user_id: Mapped[str] = mapped_column(String(32))
    source: Mapped[ActorSource] = mapped_column(str_enum(ActorSource))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    applied_at: Mapped[datetime | None]  # when ECS accepted the call (or was seen to have taken it)
    error: Mapped[str | None] = mapped_column(Text)
    # Who is sending it to ECS now (the click path, or a reconciler retrying it), and until when: one at a time.
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]


class ServiceLock(Base):
    """A freeze on one catalog service: no deployment starts while it holds."""

    __tablename__ = "service_locks"

    service_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked_by: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    locked_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime | None]


class Outbox(Base):
    """A Slack message to send; the idempotency key makes queueing the same message twice impossible."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_state_not_before", "state", "not_before"),
        # The notifier asks "is an earlier message of this deployment still waiting?" for every due reply.
        # Partial on PostgreSQL (only unsent rows matter, one seek however long the history grows); SQLite's
        # planner would not use a partial index for that subquery, so it gets the whole one (both measured).
        Index(
            "ix_outbox_unsent_by_deployment",
            "deployment_id",
            "id",
            postgresql_where=text("state IN ('PENDING', 'SENDING')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    kind: Mapped[OutboxKind] = mapped_column(str_enum(OutboxKind))
    channel_id: Mapped[str] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    in_thread: Mapped[bool] = mapped_column(default=False)  # reply under the deployment's root message
    user_id: Mapped[str | None] = mapped_column(String(32))  # ephemeral recipient
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[OutboxState] = mapped_column(str_enum(OutboxState), default=OutboxState.PENDING)
    lease_owner: Mapped[str | None] = mapped_column(String(128))  # the sender a SENDING row belongs to
    priority: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))  # outbox.priority()
    attempts: Mapped[int] = mapped_column(default=0)
    # Failed look-ups in a row of a post in doubt: their own back-off, not send attempts (bot/domain/backoff.py).
    lookups: Mapped[int] = mapped_column(SmallInteger, default=0, server_default=text("0"))
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class SlackPace(Base):
    """When the next Slack call of one kind may go, shared by every replica (a channel's posts, a method's hold)."""

    __tablename__ = "slack_pace"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)  # bot.domain.outbox.pace_key(...)
    not_before: Mapped[datetime]
