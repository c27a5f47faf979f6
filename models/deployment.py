"""A deployment requested through the bot, and its append-only timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from bot.domain.enums import (
    ACTIVE_STATUSES,
    DeploymentStatus,
    EcsStatus,
    EventKind,
    LifecycleStage,
    Strategy,
)
from models.base import Base, str_enum, utcnow

_ACTIVE_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATUSES)))


class Deployment(Base):
    """One deployment of one catalog service, from request to outcome."""

    __tablename__ = "deployments"
    __table_args__ = (
        # The database itself guarantees one active deployment per service, whatever races above it.
        Index(
            "uq_deployments_one_active_per_service",
            "service_key",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_deployments_status_lease", "status", "lease_until"),
        Index("ix_deployments_service_created", "service_key", "created_at"),
        Index("ix_deployments_requester_created", "requested_by", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    service_key: Mapped[str] = mapped_column(String(64))
    cluster: Mapped[str] = mapped_column(String(255))
    service: Mapped[str] = mapped_column(String(255))
    region: Mapped[str] = mapped_column(String(32))
    role_arn: Mapped[str | None] = mapped_column(String(2048))
    strategy: Mapped[Strategy] = mapped_column(str_enum(Strategy))
    canary_percent: Mapped[float | None]
    linear_step_percent: Mapped[float | None]
    canary_bake_seconds: Mapped[int | None]
    step_bake_seconds: Mapped[int | None]
    bake_seconds: Mapped[int | None]
    approval_stages: Mapped[list[Any]] = mapped_column(default=list)
    image_from: Mapped[str | None] = mapped_column(String(1024))
    image_to: Mapped[str | None] = mapped_column(String(1024))
    taskdef_from: Mapped[str | None] = mapped_column(String(2048))
    taskdef_to: Mapped[str | None] = mapped_column(String(2048))
    ecs_deployment_arn: Mapped[str | None] = mapped_column(String(2048), unique=True)
    status: Mapped[DeploymentStatus] = mapped_column(str_enum(DeploymentStatus))
    ecs_status: Mapped[EcsStatus | None] = mapped_column(str_enum(EcsStatus))
    status_reason: Mapped[str | None] = mapped_column(Text)
    lifecycle_stage: Mapped[LifecycleStage | None] = mapped_column(str_enum(LifecycleStage))
    production_weight: Mapped[float | None]
    test_weight: Mapped[float | None]
    tracked: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    root_ts: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    rollback_of_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)

    events: Mapped[list[DeploymentEvent]] = relationship(
        back_populates="deployment", order_by="DeploymentEvent.id", cascade="all, delete-orphan"
    )
    rollback_of: Mapped[Deployment | None] = relationship(remote_side=[id])

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy's declarative hook

    @property
    def is_active(self) -> bool:
        """True while the reconciler still watches this deployment."""
        return self.status in ACTIVE_STATUSES


class DeploymentEvent(Base):
    """One timeline entry; `key` makes storing the same observation twice impossible.

    Service-level entries (a refused deploy, a lock) have no deployment; they are found by service key.
    """

    __tablename__ = "deployment_events"
    __table_args__ = (
        UniqueConstraint("deployment_id", "key"),
        Index("ix_deployment_events_service_at", "service_key", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id", ondelete="CASCADE"))
    service_key: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(255))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind))
    stage: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    actor: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)

    deployment: Mapped[Deployment | None] = relationship(back_populates="events")
