"""Read-only values of a deployment, its events and decisions, for messages and answers (no ORM here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.domain.enums import (
    ECS_OUTCOMES,
    ActorSource,
    DecisionKind,
    DeploymentStatus,
    EcsStatus,
    EventKind,
    HookStatus,
    LifecycleStage,
    Strategy,
)


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
    source: ActorSource
    decided_at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class AwaitingHook:
    """A PAUSE hook waiting for a person."""

    hook_id: str
    stage: str | None
    expires_at: datetime | None
    timeout_action: str | None
    next_step: Mapping[str, Any] | None = None  # {k, n, percent}: the production step a pre-production pause guards


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
    headless: bool = False  # no load balancer or Service Connect: no traffic to shift
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

    @property
    def took(self) -> timedelta | None:
        """How long ECS ran it: ECS's end minus ECS's start, None while it runs or when ECS never ran it."""
        if self.status not in ECS_OUTCOMES or self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at

    def requested_ago(self, now: datetime) -> timedelta:
        """How long ago the person asked for it, on the bot's clock (both ends are the bot's)."""
        return now - self.created_at

    def decision_for(self, hook_id: str) -> DecisionView | None:
        """The decision already taken on `hook_id`, if any."""
        return next((d for d in self.decisions if d.hook_id == hook_id), None)


@dataclass(frozen=True)
class LockView:
    """A service's freeze, while it holds."""

    service_key: str
    locked_by: str
    reason: str | None
    locked_at: datetime
    until: datetime | None = None


@dataclass(frozen=True)
class StatusReport:
    """What `/deploy status [service]` shows, read at once: active deployments, their waiting approvals, locks.

    `service_key` None means every service. `last` is the service's latest deployment when none is active (only
    when one service was asked for), so the per-service view can say how it ended without calling it active.
    """

    service_key: str | None
    active: tuple[DeploymentView, ...] = ()
    locks: tuple[LockView, ...] = ()
    last: DeploymentView | None = None

    @property
    def waiting(self) -> tuple[DeploymentView, ...]:
        """The active deployments a person has to approve."""
        return tuple(v for v in self.active if v.status is DeploymentStatus.AWAITING_APPROVAL)


def awaiting_hooks(tracked: Mapping[str, Any]) -> tuple[AwaitingHook, ...]:
    """The PAUSE hooks the machine last saw AWAITING_ACTION, from a deployment's tracked state."""
    hooks: Mapping[str, str] = tracked.get("hooks", {})
    info: Mapping[str, Mapping[str, Any]] = tracked.get("hook_info", {})
    return tuple(
        AwaitingHook(
            hook_id=hook_id,
            stage=info.get(hook_id, {}).get("stage"),
            expires_at=parse_time(info.get(hook_id, {}).get("expires_at")),
            timeout_action=info.get(hook_id, {}).get("timeout_action"),
            next_step=info.get(hook_id, {}).get("next_step"),
        )
        for hook_id, status in hooks.items()
        if status == HookStatus.AWAITING_ACTION
    )


def parse_time(value: Any) -> datetime | None:
    """A datetime from the ISO text the tracked state stores, None for anything else."""
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None
