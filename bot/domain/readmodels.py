"""Read-only values of a deployment, its events and decisions, for messages and answers (no ORM outside)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.domain.enums import DecisionKind, DeploymentStatus, EcsStatus, EventKind, LifecycleStage, Strategy
from models import Decision, Deployment, DeploymentEvent


@dataclass(frozen=True)
class EventView:
    """One timeline entry."""

    id: int
    kind: EventKind
    key: str
    stage: str | None
    detail: Mapping[str, Any]
    actor: str | None
    at: datetime


@dataclass(frozen=True)
class DecisionView:
    """A person's approve / roll back on a hook."""

    hook_id: str
    kind: DecisionKind
    user_id: str
    source: str
    decided_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class AwaitingHook:
    """A PAUSE hook waiting for a person."""

    hook_id: str
    stage: str | None
    expires_at: datetime | None
    timeout_action: str | None


@dataclass(frozen=True)
class DeploymentView:
    """Everything a message or an answer shows about one deployment."""

    id: int
    service_key: str
    cluster: str
    service: str
    region: str
    strategy: Strategy
    canary_percent: float | None
    linear_step_percent: float | None
    canary_bake_seconds: int | None
    step_bake_seconds: int | None
    bake_seconds: int | None
    approval_stages: tuple[str, ...]
    image_from: str | None
    image_to: str | None
    taskdef_from: str | None
    taskdef_to: str | None
    ecs_deployment_arn: str | None
    status: DeploymentStatus
    ecs_status: EcsStatus | None
    status_reason: str | None
    lifecycle_stage: LifecycleStage | None
    production_weight: float | None
    test_weight: float | None
    requested_by: str
    channel_id: str
    root_ts: str | None
    reason: str | None
    rollback_of_id: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    version: int
    stages_seen: tuple[LifecycleStage, ...] = ()
    bake_until: datetime | None = None
    awaiting: tuple[AwaitingHook, ...] = ()
    decisions: tuple[DecisionView, ...] = ()
    events: tuple[EventView, ...] = field(default=(), repr=False)

    @property
    def is_active(self) -> bool:
        """True while ECS is still working on it."""
        return self.status.is_active

    @property
    def step_percent(self) -> float | None:
        """The canary's first step or the linear step, whichever the strategy uses."""
        if self.strategy is Strategy.CANARY:
            return self.canary_percent
        return self.linear_step_percent if self.strategy is Strategy.LINEAR else None

    def decision_for(self, hook_id: str) -> DecisionView | None:
        """The decision already taken on `hook_id`, if any."""
        return next((d for d in self.decisions if d.hook_id == hook_id), None)


def event_view(row: DeploymentEvent) -> EventView:
    """An EventView of an event row."""
    return EventView(row.id, row.kind, row.key, row.stage, dict(row.detail), row.actor, row.at)


def decision_view(row: Decision) -> DecisionView:
    """A DecisionView of a decision row."""
    return DecisionView(row.hook_id, row.kind, row.user_id, row.source, row.decided_at, row.reason)


def deployment_view(
    row: Deployment, decisions: Sequence[Decision] = (), events: Sequence[DeploymentEvent] = ()
) -> DeploymentView:
    """A DeploymentView of a deployment row, with the hooks now awaiting a person."""
    tracked = row.tracked or {}
    return DeploymentView(
        id=row.id,
        service_key=row.service_key,
        cluster=row.cluster,
        service=row.service,
        region=row.region,
        strategy=row.strategy,
        canary_percent=row.canary_percent,
        linear_step_percent=row.linear_step_percent,
        canary_bake_seconds=row.canary_bake_seconds,
        step_bake_seconds=row.step_bake_seconds,
        bake_seconds=row.bake_seconds,
        approval_stages=tuple(row.approval_stages or ()),
        image_from=row.image_from,
        image_to=row.image_to,
        taskdef_from=row.taskdef_from,
        taskdef_to=row.taskdef_to,
        ecs_deployment_arn=row.ecs_deployment_arn,
        status=row.status,
        ecs_status=row.ecs_status,
        status_reason=row.status_reason,
        lifecycle_stage=row.lifecycle_stage,
        production_weight=row.production_weight,
        test_weight=row.test_weight,
        requested_by=row.requested_by,
        channel_id=row.channel_id,
        root_ts=row.root_ts,
        reason=row.reason,
        rollback_of_id=row.rollback_of_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        version=row.version,
        stages_seen=tuple(LifecycleStage(s) for s in tracked.get("stages_seen", ())),
        bake_until=_parse_time(tracked.get("bake_until")),
        awaiting=awaiting_hooks(tracked) if row.status is DeploymentStatus.AWAITING_APPROVAL else (),
        decisions=tuple(decision_view(d) for d in decisions),
        events=tuple(event_view(e) for e in events),
    )


def awaiting_hooks(tracked: Mapping[str, Any]) -> tuple[AwaitingHook, ...]:
    """The PAUSE hooks the machine last saw AWAITING_ACTION, from a deployment's tracked state."""
    hooks: Mapping[str, str] = tracked.get("hooks", {})
    info: Mapping[str, Mapping[str, Any]] = tracked.get("hook_info", {})
    return tuple(
        AwaitingHook(
            hook_id=hook_id,
            stage=info.get(hook_id, {}).get("stage"),
            expires_at=_parse_time(info.get(hook_id, {}).get("expires_at")),
            timeout_action=info.get(hook_id, {}).get("timeout_action"),
        )
        for hook_id, status in hooks.items()
        if status == "AWAITING_ACTION"
    )


def _parse_time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
