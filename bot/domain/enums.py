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
    LOST = "LOST"  # ECS no longer knows it (service or deployment deleted): the bot stopped following it

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

# Outcomes ECS reached: their start and end are ECS's timestamps. Other ends (FAILED: ECS never started it) are
# the bot's verdicts, timed by the bot's clock, so no duration is measured across the two.
ECS_OUTCOMES = frozenset(
    {
        DeploymentStatus.SUCCEEDED,
        DeploymentStatus.ROLLED_BACK,
        DeploymentStatus.ROLLBACK_FAILED,
        DeploymentStatus.STOPPED,
        DeploymentStatus.SUPERSEDED,
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


# The hook stages a rolling update passes. Inferred, not documented: AWS says pause hooks work with rolling
# deployments (the May 2026 launch: "rolling, blue/green, linear, and canary"), but its lists of hook stages
# (DeploymentLifecycleHook.lifecycleStages, "Pause hooks for Amazon ECS service deployments") are one list for
# every strategy, each stage described in blue/green terms ("The green service revision has not started"). A
# rolling update shifts no test or production traffic, so these three are the ones it can pass.
ROLLING_HOOK_STAGES = frozenset({HookStage.RECONCILE_SERVICE, HookStage.PRE_SCALE_UP, HookStage.POST_SCALE_UP})


def hook_stages_of(strategy: Strategy) -> frozenset[HookStage]:
    """The hook stages a deployment of this strategy passes (blue/green, canary and linear pass them all)."""
    return ROLLING_HOOK_STAGES if strategy is Strategy.ROLLING else frozenset(HookStage)


# PAUSE hooks are refused where ECS re-runs the stage during a rollback.
PAUSE_FORBIDDEN_STAGES = frozenset({HookStage.TEST_TRAFFIC_SHIFT, HookStage.PRODUCTION_TRAFFIC_SHIFT})
PAUSE_STAGES = tuple(s for s in HookStage if s not in PAUSE_FORBIDDEN_STAGES)


class TimeoutAction(StrEnum):
    """What ECS does when a PAUSE hook expires."""

    ROLLBACK = "ROLLBACK"
    CONTINUE = "CONTINUE"


class HookTargetType(StrEnum):
    """What a lifecycle hook runs (DeploymentLifecycleHook.targetType)."""

    AWS_LAMBDA = "AWS_LAMBDA"
    PAUSE = "PAUSE"


class HookStatus(StrEnum):
    """A lifecycle hook's state in DescribeServiceDeployments' lifecycleHookDetails."""

    AWAITING_ACTION = "AWAITING_ACTION"  # a PAUSE hook waiting for ContinueServiceDeployment
    IN_PROGRESS = "IN_PROGRESS"  # a Lambda hook running
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"

    @property
    def is_final(self) -> bool:
        """True once the hook will not change any more."""
        return self in (HookStatus.SUCCEEDED, HookStatus.FAILED, HookStatus.TIMED_OUT)


class DecisionKind(StrEnum):
    """A human decision on a lifecycle hook."""

    APPROVE = "APPROVE"
    ROLLBACK = "ROLLBACK"


# Stop/rollback decisions that are not tied to a PAUSE hook share one hook id, so only one can ever be recorded.
STOP_HOOK_ID = "-stop-"


class DecisionEffect(StrEnum):
    """What ECS's state says of a decision sent (or maybe sent): read after an error, before a retry."""

    TOOK_EFFECT = "took_effect"  # ECS applied it (perhaps from a call whose answer was lost): never send it again
    NOT_YET = "not_yet"  # the pause still waits / the deployment still runs: sending it is still right
    OVERTAKEN = "overtaken"  # it can no longer apply: the pause ended otherwise, or the deployment did


class RollbackCause(StrEnum):
    """Why a deployment rolled back or stopped, as the machine attributes it (stored in event details)."""

    USER = "user"  # a person rolled it back
    ALARM = "alarm"
    CIRCUIT_BREAKER = "circuit_breaker"
    HOOK_FAILURE = "hook_failure"
    TIMEOUT = "timeout"  # a PAUSE hook expired with timeout action ROLLBACK
    SUPERSEDED = "superseded"  # a newer deployment replaced it
    ECS = "ecs"  # ECS gave no cause we recognise

    @property
    def is_automatic(self) -> bool:
        """True when ECS rolled back on its own (announced in the incident channel), not a person or a newer one."""
        return self not in (RollbackCause.USER, RollbackCause.SUPERSEDED)

    @classmethod
    def of(cls, value: object) -> RollbackCause | None:
        """The cause a stored event detail names, None when it names none we know."""
        try:
            return cls(str(value)) if value is not None else None
        except ValueError:
            return None


class ActorSource(StrEnum):
    """Where a person's request came from."""

    COMMAND = "command"  # /deploy …
    BUTTON = "button"  # a button on a deployment's message
    MODAL = "modal"  # the /deploy form
    APP_HOME = "app_home"  # a button on the App Home tab
    SYSTEM = "system"  # the bot itself, e.g. rolling back a pause whose approval request could not be shown


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


class ChannelAccess(StrEnum):
    """Whether the bot can tell a deployment's story in a conversation (the Slack layer asks conversations.info)."""

    POSTABLE = "postable"  # a channel the bot is in, or a public one it may post to (chat:write.public)
    DIRECT = "direct"  # a DM: only its two people would ever see the thread and its buttons
    ARCHIVED = "archived"
    HIDDEN = "hidden"  # a private channel without the bot, a DM or group DM between people: channel_not_found
    UNKNOWN = "unknown"  # Slack did not answer (after retries): nothing can be promised


class SlackFailureKind(StrEnum):
    """What a failed Slack call means for the caller (the table is `bot/slack/errors.py`)."""

    RETRY = "retry"  # not processed: try again after a back-off (Retry-After on a 429)
    LOOKUP = "lookup"  # may have partly succeeded: look for the message before sending it again
    MESSAGE = "message"  # this message or its target is wrong: sending it again cannot help
    BOT = "bot"  # the token or installation is broken: nothing will work until a person fixes it


class RenderKind(StrEnum):
    """What an outbox row's message is rendered from at send time (`payload["render"]`)."""

    ROOT = "root"  # the deployment's live root message, from its current state
    EVENT = "event"  # a thread reply narrating one timeline event
    INCIDENT = "incident"  # for another channel: an automatic rollback announced, or how a rollback there ended
    MESSAGE = "message"  # text (and blocks) written when it was queued


class Verb(StrEnum):
    """The words after `/deploy` that are commands, not service names (a catalog service may not be called so)."""

    STATUS = "status"
    HISTORY = "history"
    APPROVE = "approve"
    ROLLBACK = "rollback"
    LOCK = "lock"
    UNLOCK = "unlock"
    HELP = "help"


class Telling(StrEnum):
    """Where a timeline event is told (bot/domain/telling.py decides)."""

    REPLY = "reply"  # a thread reply under the root message
    ROOT = "root"  # only the root message shows it (checklist, traffic bar, decision lines)
    AUDIT = "audit"  # kept in the history only


class AnswerKind(StrEnum):
    """How the Slack layer renders a use case's answer."""

    TEXT = "text"
    STATUS = "status"
    HISTORY = "history"
    HELP = "help"


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


class LogFormat(StrEnum):
    """How log lines are rendered (DEPLOYBOT_LOG_FORMAT): `auto` is JSON unless stderr is a terminal."""

    AUTO = "auto"
    JSON = "json"
    CONSOLE = "console"


class Pace(StrEnum):
    """How soon a live deployment can change by itself (the reconciler's describe schedule)."""

    MOVING = "MOVING"  # ECS works on it: describe it every pass
    QUIET = "QUIET"  # baking or waiting for a person: it may wait a few passes when the budget is short
