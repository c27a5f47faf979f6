"""Values the ECS gateway returns (frozen dataclasses) and the pure parsing of ECS's answers into them.

Nothing here imports boto3: the state machine and the tests use these types without a network stack.
Field names follow botocore's ECS model (`ServiceDeployment`, `ServiceRevisionSummary`, …).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.domain.catalog.schema import (
    DEFAULT_APPROVAL_TIMEOUT,
    DEFAULT_BAKE,
    DEFAULT_CANARY_BAKE,
    DEFAULT_CANARY_PERCENT,
    DEFAULT_LINEAR_STEP_PERCENT,
    DEFAULT_STEP_BAKE,
    DEFAULT_TIMEOUT_ACTION,
)
from bot.domain.enums import EcsStatus, HookStage, HookTargetType, LifecycleStage, Strategy, TimeoutAction

HookAction = Literal["CONTINUE", "ROLLBACK"]


class EcsError(Exception):
    """ECS refused a call; `code` is ECS's error code (e.g. InvalidParameterException)."""

    def __init__(self, code: str, message: str, operation: str) -> None:
        super().__init__(f"{operation}: {code}: {message}")
        self.code = code
        self.message = message
        self.operation = operation


class EcsUnavailable(EcsError):
    """ECS is throttling or failing (5xx, connection): try later, never a failed deployment."""


@dataclass(frozen=True)
class Credentials:
    """Temporary AWS credentials from AssumeRole; `expiration` is timezone-aware."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


@dataclass(frozen=True)
class ServiceInfo:
    """What a deployment needs to know about an ECS service before starting."""

    service_arn: str
    cluster: str
    service_name: str
    task_definition_arn: str
    container: str
    image: str
    desired_count: int
    deployment_configuration: Mapping[str, Any]  # as DescribeServices returned it; re-sent with our changes
    has_load_balancers: bool
    has_service_connect: bool
    current_deployment_arn: str | None = None  # the service's currentServiceDeployment before we change anything
    load_balancers: tuple[Mapping[str, Any], ...] = ()  # the service's loadBalancers, as ECS returned them
    has_vpc_lattice: bool = False

    @property
    def headless(self) -> bool:
        """No load balancer, Service Connect or VPC Lattice: ECS only allows BLUE_GREEN and shifts no traffic."""
        return not self.has_load_balancers and not self.has_service_connect and not self.has_vpc_lattice

    @property
    def task_definition(self) -> str:
        """The task definition as `family:revision`."""
        return task_definition_name(self.task_definition_arn)

    @property
    def hooks(self) -> tuple[Mapping[str, Any], ...]:
        """The service's configured lifecycle hooks (raw, as ECS returned them)."""
        return tuple(self.deployment_configuration.get("lifecycleHooks") or ())

    @property
    def strategy(self) -> Strategy:
        """The strategy the service is currently configured with (ROLLING when unset)."""
        return Strategy(self.deployment_configuration.get("strategy") or Strategy.ROLLING)


@dataclass(frozen=True)
class StartSpec:
    """How to run one deployment: strategy, percentages, bakes and our approval pauses."""

    strategy: Strategy
    task_definition: str
    canary_percent: float = DEFAULT_CANARY_PERCENT
    canary_bake: timedelta = DEFAULT_CANARY_BAKE
    linear_step_percent: float = DEFAULT_LINEAR_STEP_PERCENT
    step_bake: timedelta = DEFAULT_STEP_BAKE
    bake: timedelta = DEFAULT_BAKE
    approval_stages: tuple[HookStage, ...] = ()
    approval_timeout: timedelta = DEFAULT_APPROVAL_TIMEOUT
    timeout_action: TimeoutAction = DEFAULT_TIMEOUT_ACTION


@dataclass(frozen=True)
class RevisionSummary:
    """A revision's part in a service deployment: task counts and requested traffic weights (0–100)."""

    arn: str
    requested_tasks: int | None = None
    running_tasks: int | None = None
    pending_tasks: int | None = None
    test_weight: float | None = None
    production_weight: float | None = None


@dataclass(frozen=True)
class HookDetail:
    """One lifecycle hook invocation as ECS reports it."""

    hook_id: str
    target_type: str | None = None  # AWS_LAMBDA | PAUSE
    target_arn: str | None = None
    status: str | None = None  # AWAITING_ACTION | IN_PROGRESS | SUCCEEDED | FAILED | TIMED_OUT
    expires_at: datetime | None = None
    timeout_action: str | None = None

    @property
    def is_pause(self) -> bool:
        """True for a PAUSE hook (one a person resolves)."""
        return self.target_type == HookTargetType.PAUSE


@dataclass(frozen=True)
class RollbackInfo:
    """ECS's `rollback` block: why, when, and the revision traffic goes back to."""

    reason: str | None = None
    started_at: datetime | None = None
    service_revision_arn: str | None = None


@dataclass(frozen=True)
class AlarmsInfo:
    """ECS's `alarms` block of a service deployment."""

    status: str | None = None  # TRIGGERED | MONITORING | MONITORING_COMPLETE | DISABLED
    alarm_names: tuple[str, ...] = ()
    triggered_alarm_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class CircuitBreakerInfo:
    """ECS's `deploymentCircuitBreaker` block of a service deployment."""

    status: str | None = None
    failure_count: int | None = None
    threshold: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """One service deployment as DescribeServiceDeployments returned it."""

    arn: str
    status: EcsStatus
    status_reason: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    strategy: Strategy | None = None
    target: RevisionSummary | None = None
    sources: tuple[RevisionSummary, ...] = ()
    hooks: tuple[HookDetail, ...] = ()
    rollback: RollbackInfo | None = None
    alarms: AlarmsInfo | None = None
    circuit_breaker: CircuitBreakerInfo | None = None
    canary_percent: float | None = None
    canary_bake_minutes: int | None = None
    linear_step_percent: float | None = None
    step_bake_minutes: int | None = None
    bake_minutes: int | None = None
    pause_stages: tuple[str, ...] = ()  # the PAUSE hooks' stages in the deployment's configuration, if ECS gave it
    created_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    service_arn: str | None = None


@dataclass(frozen=True)
class DescribeResult:
    """Snapshots found, and the ARNs ECS reported as failures (missing)."""

    snapshots: tuple[Snapshot, ...]
    missing_arns: tuple[str, ...] = ()

    def by_arn(self) -> dict[str, Snapshot]:
        """Snapshots keyed by service-deployment ARN."""
        return {s.arn: s for s in self.snapshots}


def ecs_started(snapshot: Snapshot) -> datetime | None:
    """When ECS started the deployment, on ECS's clock (startedAt, else createdAt)."""
    return snapshot.started_at or snapshot.created_at


def ecs_ended(snapshot: Snapshot) -> datetime | None:
    """When ECS ended it, on ECS's clock (finishedAt, stoppedAt, else the last updatedAt); None while it runs."""
    if not snapshot.status.is_terminal:
        return None
    return snapshot.finished_at or snapshot.stopped_at or snapshot.updated_at


def task_definition_name(arn: str) -> str:
    """`family:revision` from a task definition ARN (or the name itself)."""
    return arn.rsplit("task-definition/", 1)[-1]


def timestamp(value: Any) -> datetime | None:
    """A timezone-aware UTC datetime from boto3's datetime, epoch seconds or ISO text."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    # boto3 always attaches a zone; a naive value (hand-made dicts) is taken as UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _enum_or_none(enum: Any, value: Any) -> Any:
    try:
        return enum(value) if value is not None else None
    except ValueError:
        return None  # a value newer than our enum: tolerate it rather than lose the deployment


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def revision_from_api(d: Mapping[str, Any]) -> RevisionSummary:
    """Parse a `ServiceRevisionSummary`."""
    return RevisionSummary(
        arn=str(d.get("arn", "")),
        requested_tasks=_int(d.get("requestedTaskCount")),
        running_tasks=_int(d.get("runningTaskCount")),
        pending_tasks=_int(d.get("pendingTaskCount")),
        test_weight=_float(d.get("requestedTestTrafficWeight")),
        production_weight=_float(d.get("requestedProductionTrafficWeight")),
    )


def hook_from_api(d: Mapping[str, Any]) -> HookDetail:
    """Parse a `DeploymentLifecycleHookDetail`."""
    return HookDetail(
        hook_id=str(d.get("hookId", "")),
        target_type=d.get("targetType"),
        target_arn=d.get("targetArn"),
        status=d.get("status"),
        expires_at=timestamp(d.get("expiresAt")),
        timeout_action=d.get("timeoutAction"),
    )


def _rollback(d: Mapping[str, Any] | None) -> RollbackInfo | None:
    if not d:
        return None
    return RollbackInfo(d.get("reason"), timestamp(d.get("startedAt")), d.get("serviceRevisionArn"))


def _alarms(d: Mapping[str, Any] | None) -> AlarmsInfo | None:
    if not d:
        return None
    return AlarmsInfo(d.get("status"), tuple(d.get("alarmNames") or ()), tuple(d.get("triggeredAlarmNames") or ()))


def _breaker(d: Mapping[str, Any] | None) -> CircuitBreakerInfo | None:
    if not d:
        return None
    return CircuitBreakerInfo(d.get("status"), _int(d.get("failureCount")), _int(d.get("threshold")))


def _config_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    canary = config.get("canaryConfiguration") or {}
    linear = config.get("linearConfiguration") or {}
    return {
        "strategy": _enum_or_none(Strategy, config.get("strategy")),
        "canary_percent": _float(canary.get("canaryPercent")),
        "canary_bake_minutes": _int(canary.get("canaryBakeTimeInMinutes")),
        "linear_step_percent": _float(linear.get("stepPercent")),
        "step_bake_minutes": _int(linear.get("stepBakeTimeInMinutes")),
        "bake_minutes": _int(config.get("bakeTimeInMinutes")),
        "pause_stages": tuple(
            str(stage)
            for hook in config.get("lifecycleHooks") or ()
            if hook.get("targetType") == HookTargetType.PAUSE
            for stage in hook.get("lifecycleStages") or ()
        ),
    }


def snapshot_from_api(d: Mapping[str, Any]) -> Snapshot:
    """Parse one `ServiceDeployment` from DescribeServiceDeployments (pure)."""
    target = d.get("targetServiceRevision")
    sources: Sequence[Mapping[str, Any]] = d.get("sourceServiceRevisions") or ()
    return Snapshot(
        arn=str(d["serviceDeploymentArn"]),
        status=EcsStatus(d["status"]),
        status_reason=d.get("statusReason"),
        lifecycle_stage=_enum_or_none(LifecycleStage, d.get("lifecycleStage")),
        target=revision_from_api(target) if target else None,
        sources=tuple(revision_from_api(s) for s in sources),
        hooks=tuple(hook_from_api(h) for h in d.get("lifecycleHookDetails") or ()),
        rollback=_rollback(d.get("rollback")),
        alarms=_alarms(d.get("alarms")),
        circuit_breaker=_breaker(d.get("deploymentCircuitBreaker")),
        created_at=timestamp(d.get("createdAt")),
        started_at=timestamp(d.get("startedAt")),
        updated_at=timestamp(d.get("updatedAt")),
        finished_at=timestamp(d.get("finishedAt")),
        stopped_at=timestamp(d.get("stoppedAt")),
        service_arn=d.get("serviceArn"),
        **_config_fields(d.get("deploymentConfiguration") or {}),
    )
