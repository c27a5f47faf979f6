"""Enumerations shared by the ORM, the pure core and the gateways (stored by value)."""

from __future__ import annotations

from enum import StrEnum


class Strategy(StrEnum):
    """ECS deployment strategy (the value ECS uses)."""

    ROLLING = "ROLLING"
    BLUE_GREEN = "BLUE_GREEN"
    CANARY = "CANARY"
    LINEAR = "LINEAR"


class DeploymentStatus(StrEnum):
    """Our own view of a deployment's progress."""

    REQUESTED = "REQUESTED"  # row written, ECS not yet called
    IN_PROGRESS = "IN_PROGRESS"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    ROLLING_BACK = "ROLLING_BACK"
    SUCCEEDED = "SUCCEEDED"
    ROLLED_BACK = "ROLLED_BACK"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"
    STOPPED = "STOPPED"
    SUPERSEDED = "SUPERSEDED"
    FAILED = "FAILED"  # ECS refused to start it

    @property
    def is_active(self) -> bool:
        """True while the reconciler still has to watch the deployment."""
        return self in ACTIVE_STATUSES


ACTIVE_STATUSES = frozenset(
    {
        DeploymentStatus.REQUESTED,
        DeploymentStatus.IN_PROGRESS,
        DeploymentStatus.AWAITING_APPROVAL,
        DeploymentStatus.ROLLING_BACK,
    }
)


class EcsStatus(StrEnum):
    """ServiceDeploymentStatus as ECS reports it."""

    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    SUCCESSFUL = "SUCCESSFUL"
    STOP_REQUESTED = "STOP_REQUESTED"
    STOPPED = "STOPPED"
    ROLLBACK_REQUESTED = "ROLLBACK_REQUESTED"
    ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
    ROLLBACK_SUCCESSFUL = "ROLLBACK_SUCCESSFUL"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"

    @property
    def is_terminal(self) -> bool:
        """True once ECS will not change this deployment any more."""
        return self in {
            EcsStatus.SUCCESSFUL,
            EcsStatus.STOPPED,
            EcsStatus.ROLLBACK_SUCCESSFUL,
            EcsStatus.ROLLBACK_FAILED,
        }


class LifecycleStage(StrEnum):
    """Reported lifecycle stages, in the order ECS runs them."""

    RECONCILE_SERVICE = "RECONCILE_SERVICE"
    PRE_SCALE_UP = "PRE_SCALE_UP"
    SCALE_UP = "SCALE_UP"
    POST_SCALE_UP = "POST_SCALE_UP"
    TEST_TRAFFIC_SHIFT = "TEST_TRAFFIC_SHIFT"
    POST_TEST_TRAFFIC_SHIFT = "POST_TEST_TRAFFIC_SHIFT"
    PRODUCTION_TRAFFIC_SHIFT = "PRODUCTION_TRAFFIC_SHIFT"
    POST_PRODUCTION_TRAFFIC_SHIFT = "POST_PRODUCTION_TRAFFIC_SHIFT"
    BAKE_TIME = "BAKE_TIME"
    CLEAN_UP = "CLEAN_UP"


class HookStage(StrEnum):
    """Stages a lifecycle hook can be attached to."""

    RECONCILE_SERVICE = "RECONCILE_SERVICE"
    PRE_SCALE_UP = "PRE_SCALE_UP"
    POST_SCALE_UP = "POST_SCALE_UP"
    TEST_TRAFFIC_SHIFT = "TEST_TRAFFIC_SHIFT"
    POST_TEST_TRAFFIC_SHIFT = "POST_TEST_TRAFFIC_SHIFT"
    PRE_PRODUCTION_TRAFFIC_SHIFT = "PRE_PRODUCTION_TRAFFIC_SHIFT"
    PRODUCTION_TRAFFIC_SHIFT = "PRODUCTION_TRAFFIC_SHIFT"
    POST_PRODUCTION_TRAFFIC_SHIFT = "POST_PRODUCTION_TRAFFIC_SHIFT"


# PAUSE hooks are refused where ECS re-runs the stage during a rollback.
PAUSE_FORBIDDEN_STAGES = frozenset({HookStage.TEST_TRAFFIC_SHIFT, HookStage.PRODUCTION_TRAFFIC_SHIFT})
PAUSE_STAGES = tuple(s for s in HookStage if s not in PAUSE_FORBIDDEN_STAGES)


class TimeoutAction(StrEnum):
    """What ECS does when a PAUSE hook expires."""

    ROLLBACK = "ROLLBACK"
    CONTINUE = "CONTINUE"


class DecisionKind(StrEnum):
    """A human decision on a lifecycle hook."""

    APPROVE = "APPROVE"
    ROLLBACK = "ROLLBACK"


class OutboxState(StrEnum):
    """Delivery state of a queued Slack message."""

    PENDING = "PENDING"
    SENDING = "SENDING"  # claimed; the Slack call may or may not have happened
    SENT = "SENT"
    FAILED = "FAILED"


class OutboxKind(StrEnum):
    """Which Slack call an outbox row becomes."""

    POST = "POST"  # chat.postMessage (root or thread reply)
    UPDATE_ROOT = "UPDATE_ROOT"  # chat.update of the deployment's root message (coalesced)
    EPHEMERAL = "EPHEMERAL"


class EventKind(StrEnum):
    """Kinds of entries in a deployment's timeline."""

    ACCEPTED = "ACCEPTED"  # the request passed policy and was stored
    STARTED = "STARTED"  # ECS accepted UpdateService; detail has the service-deployment ARN
    START_FAILED = "START_FAILED"  # ECS refused to start it
    STAGE_ENTERED = "STAGE_ENTERED"
    STAGE_PASSED = "STAGE_PASSED"  # a stage that ran entirely between two polls
    TRAFFIC_MOVED = "TRAFFIC_MOVED"
    HOOK_AWAITING = "HOOK_AWAITING"
    HOOK_RESOLVED = "HOOK_RESOLVED"
    BAKE_STARTED = "BAKE_STARTED"
    ROLLBACK_STARTED = "ROLLBACK_STARTED"
    FINISHED = "FINISHED"
    DECISION = "DECISION"  # a person approved or rolled back
    REFUSED = "REFUSED"  # policy refused someone; detail says who tried what
    REMINDER = "REMINDER"
    LOCKED = "LOCKED"
    UNLOCKED = "UNLOCKED"
