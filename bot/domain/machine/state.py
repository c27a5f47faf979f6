"""What the database stores for one deployment (`Tracked`) and the timeline entries the machine emits (`Event`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from bot.domain.enums import DeploymentStatus, EcsStatus, EventKind, LifecycleStage, Strategy

HookInfo = Mapping[str, Any]  # stage, target_type, target_arn, expires_at (ISO text), timeout_action


@dataclass(frozen=True)
class Tracked:
    """The machine's memory of one deployment; `to_json`/`from_json` round-trip it through a JSON column."""

    strategy: Strategy
    step_percent: float | None = None  # canary percent or linear step, for "step k of n"
    headless: bool = False  # no load balancer or Service Connect: nothing to shift, whatever weights ECS reports
    pause_stages: tuple[str, ...] = ()  # the approval stages DeployBot asked ECS to pause at
    status: DeploymentStatus = DeploymentStatus.IN_PROGRESS
    ecs_status: EcsStatus | None = None
    lifecycle_stage: LifecycleStage | None = None
    stages_seen: tuple[LifecycleStage, ...] = ()  # entered or passed, in the order we learnt of them
    test_weight: float | None = None
    production_weight: float | None = None
    hooks: Mapping[str, str] = field(default_factory=dict)  # hookId -> last status seen (or inferred)
    hook_info: Mapping[str, HookInfo] = field(default_factory=dict)  # hookId -> what we knew of it
    rollback_seen: bool = False
    bake_until: datetime | None = None
    emitted: tuple[str, ...] = ()  # event keys already emitted: never emit one twice

    @classmethod
    def start(
        cls,
        strategy: Strategy,
        step_percent: float | None = None,
        *,
        headless: bool = False,
        pause_stages: tuple[str, ...] = (),
    ) -> Tracked:
        """The state of a deployment ECS has just accepted."""
        return cls(strategy=strategy, step_percent=step_percent, headless=headless, pause_stages=pause_stages)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (enums by value, datetimes as ISO 8601)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = [str(v) for v in value]
            elif isinstance(value, Mapping):
                value = {k: dict(v) if isinstance(v, Mapping) else v for k, v in value.items()}
            elif value is not None and not isinstance(value, bool | float | int):
                value = str(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Tracked:
        """Rebuild from `to_json` output (unknown keys are ignored, missing ones take defaults)."""
        base = cls(strategy=Strategy(data["strategy"]))
        optional_enums = {"ecs_status": EcsStatus, "lifecycle_stage": LifecycleStage}
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name in optional_enums:
                values[name] = optional_enums[name](value) if value is not None else None
            elif name == "status":
                values[name] = DeploymentStatus(value)
            elif name == "stages_seen":
                values[name] = tuple(LifecycleStage(s) for s in value)
            elif name in {"emitted", "pause_stages"}:
                values[name] = tuple(value)
            elif name == "bake_until":
                values[name] = datetime.fromisoformat(value) if value else None
            elif name in {"step_percent", "test_weight", "production_weight", "rollback_seen", "headless"}:
                values[name] = value
            elif name in {"hooks", "hook_info"}:
                values[name] = dict(value)
        return replace(base, **values)


@dataclass(frozen=True)
class Event:
    """One timeline entry; `key` is natural (deterministic from what ECS reported) and unique per deployment."""

    kind: EventKind
    key: str
    stage: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None  # the Slack user behind it, when it was one of ours
