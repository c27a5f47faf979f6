"""Use cases: request a deployment and start it on ECS; status and history. Approve/roll back live in decisions.py."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Executable, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.db import leases
from bot.db.sessions import is_postgres, transaction, written_again
from bot.db.store import (
    active_deployment,
    add_event,
    current_lock,
    latest_deployment,
    lock_view,
    locks_holding,
    queue_root_post,
    queue_root_update,
    record,
    view_of,
    views_of,
)
from bot.domain import policy
from bot.domain.catalog.loader import Catalog, ServiceConfig
from bot.domain.enums import ChannelAccess, DeploymentStatus, EventKind, Strategy
from bot.domain.grammar import parser as grammar
from bot.domain.machine.state import Tracked
from bot.domain.narration import AccessOf, narration
from bot.domain.readmodels import DeploymentView, StatusReport
from bot.domain.text import escape
from bot.ecs.gateway import EcsError, EcsGateway, EcsUnavailable, ServiceInfo
from bot.engine import metrics
from bot.engine.answers import Actor, Answer, mention, refused, slack_time
from bot.engine.preflight import preflight_problem
from bot.engine.starts import Starts
from bot.logs import bound, get_logger
from models import Deployment, utcnow

log = get_logger(__name__)
Clock = Callable[[], datetime]


class Deployments:
    """Starting deployments and answering questions about them."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        ecs: EcsGateway,
        membership: policy.Membership,
        clock: Clock = utcnow,
        channels: AccessOf = lambda _channel: ChannelAccess.POSTABLE,
    ) -> None:
        self.sessions = sessions
        self.catalog = catalog
        self.ecs = ecs
        self.membership = membership
        self.clock = clock
        self.channels = channels  # can the bot post there? (the Slack layer asks conversations.info)
        self.starts = Starts(self)
        self.owner = "deployments"  # this process's name (UseCases sets it): a start in progress ends with it
        self._liveness: leases.Liveness | None = None

    # Refusals are part of the audit trail ---------------------------------------------------------------------
    def refuse(self, actor: Actor, service_key: str, action: str, verdict: policy.Verdict) -> Answer:
        """Record who tried what and was refused, and answer with the rule's reason."""
        with transaction(self.sessions) as session:
            add_event(
                session,
                service_key=service_key,
                kind=EventKind.REFUSED,
                key=f"refused:{uuid.uuid4().hex}",
                at=self.clock(),
                actor=actor.user_id,
                detail={
                    "action": action,
                    "rule": verdict.rule,
                    "reason": verdict.reason,
                    "channel": actor.channel_id,
                    "source": actor.source,
                },
            )
        return refused(verdict.reason, verdict.rule)

    # /deploy <service> … ---------------------------------------------------------------------------------------
    def request_deploy(self, actor: Actor, cmd: grammar.Deploy) -> Answer:
        """Check policy, locks and the service, store the deployment, then start it on ECS."""
        service = self.catalog.get(cmd.service)
        if service is None:
            return refused(f"Unknown service `{escape(cmd.service)}`.")
        stages = cmd.approve if cmd.approve is not None else service.approval_stages
        for verdict in (
            policy.may_deploy(service, actor.user_id, actor.channel_id, self.membership),
            policy.check_approvals(service, cmd.approve),
            policy.check_strategy(service, cmd.strategy, stages),
        ):
            if not verdict.allowed:
                return self.refuse(actor, service.key, "deploy", verdict)
        blocked = self.blocked_by(service.key)
        if blocked:
            return blocked
        where = narration(service, actor.channel_id, self.channels)
        if where.channel is None:
            return refused(where.text)  # before any ECS call: nobody could follow or approve it
        info = self.read_service(service)
        if isinstance(info, Answer):
            return info
        problem = preflight_problem(service, info, cmd) if info is not None else None
        if problem is not None:
            return problem  # before any ECS call that changes something: what is wrong and what to type
        answer = self.create_and_start(replace(actor, channel_id=where.channel), service, info, cmd, stages)
        return replace(answer, text=f"{where.text} {answer.text}") if where.text and answer.ok else answer

    def read_service(self, service: ServiceConfig) -> ServiceInfo | Answer | None:
        """The service as ECS has it; None while ECS is unavailable (the start is queued), an Answer if refused."""
        try:
            return self.ecs.read_service(service)
        except EcsUnavailable as exc:
            log.info("ECS unavailable reading the service: the start will be queued", error=str(exc))
            return None
        except EcsError as exc:
            return refused(f"ECS could not read `{service.cluster}/{service.service}`: {exc.code}: {exc.message}")

    def blocked_by(self, service_key: str) -> Answer | None:
        """The refusal to give while the service is locked or busy, else None."""
        with transaction(self.sessions) as session:
            lock = current_lock(session, service_key, self.clock())
            if lock is not None:
                why = f": {lock.reason}" if lock.reason else ""
                who = f"{mention(lock.locked_by)} since {slack_time(lock.locked_at)}"
                return refused(f"🔒 `{service_key}` is locked by {who}{why}. `/deploy unlock {service_key}` lifts it.")
            active = active_deployment(session, service_key)
            return _busy(active) if active is not None else None

    def create_and_start(
        self,
        actor: Actor,
        service: ServiceConfig,
        info: ServiceInfo | None,
        cmd: grammar.Deploy,
        stages: tuple[object, ...],
        rollback_of: int | None = None,
    ) -> Answer:
        """Store the deployment, its first event and root message in one transaction, then start it on ECS."""
        now = self.clock()
        dep = _new_deployment(actor, service, info, cmd, stages, now, rollback_of)
        # Until it is started (or queued), this process owns the start: if it dies first, a survivor resumes it.
        self._liveness = self._liveness or leases.liveness(self.sessions, self.owner)
        dep.tracked = {**dep.tracked, "start_owner": leases.claim_name(self.owner, "start")}
        try:
            with transaction(self.sessions) as session:
                session.add(dep)
                session.flush()
                queue_root_post(session, dep, now)
                record(
                    session,
                    dep,
                    EventKind.ACCEPTED,
                    "accepted",
                    now,
                    actor=actor.user_id,
                    detail={
                        "strategy": dep.strategy.value,
                        "image": cmd.image,
                        "taskdef": cmd.taskdef,
                        "reason": cmd.reason,
                        "rollback_of": rollback_of,
                    },
                )
        except IntegrityError:
            # Another request for the same service won the race: the partial unique index refused ours.
            return self.blocked_by(service.key) or refused(f"`{service.key}` already has a deployment starting.")
        with bound(deployment_id=dep.id, service=service.key):
            log.info("deployment requested", strategy=dep.strategy.value, rollback_of=rollback_of)
            return self.starts.start(dep.id, service, info)

    def arn_taken(self, arn: str, dep_id: int) -> bool:
        """True when another deployment already follows this ECS service deployment (it cannot be this one's)."""
        with transaction(self.sessions) as session:
            other = session.scalar(select(Deployment.id).where(Deployment.ecs_deployment_arn == arn))
            return other is not None and other != dep_id

    def attach(self, dep_id: int, arn: str) -> None:
        """Link a deployment to its ECS service deployment and start tracking it (once: the request path and
        another replica's reconciler may both find it; the one that loses the version check reads it attached)."""
        written_again(lambda: self._attach(dep_id, arn))

    def _attach(self, dep_id: int, arn: str) -> None:
        now = self.clock()
        with transaction(self.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            if dep.ecs_deployment_arn:
                return
            dep.ecs_deployment_arn = arn
            dep.status = DeploymentStatus.IN_PROGRESS  # started_at comes from ECS's own clock, on the next pass
            step = dep.canary_percent if dep.strategy is Strategy.CANARY else dep.linear_step_percent
            started = Tracked.start(
                dep.strategy,
                step,
                headless=bool(dep.tracked.get("headless")),
                pause_stages=tuple(str(s) for s in dep.approval_stages),
            )
            dep.tracked = {**dep.tracked, **started.to_json()}
            record(session, dep, EventKind.STARTED, "started", now, detail={"arn": arn, "taskdef": dep.taskdef_to})
            session.flush()
            queue_root_update(session, dep, now)
        log.info("deployment started on ECS", deployment_id=dep_id, service=dep.service_key, ecs_arn=arn)

    def fail(self, dep_id: int, message: str) -> Answer:
        """Mark a deployment that ECS never started as failed, with the reason, and say so."""
        now = self.clock()
        with transaction(self.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            dep.status = DeploymentStatus.FAILED
            dep.status_reason = message
            dep.finished_at = now
            record(session, dep, EventKind.START_FAILED, "start-failed", now, detail={"reason": message})
            session.flush()
            queue_root_update(session, dep, now)
        metrics.count_outcome(DeploymentStatus.FAILED, dep.strategy)
        log.warning("deployment not started", deployment_id=dep_id, service=dep.service_key, reason=message)
        return refused(message, deployment_id=dep_id)

    # Questions ------------------------------------------------------------------------------------------------
    def view(self, dep_id: int, *, with_events: bool = False) -> DeploymentView | None:
        """One deployment, or None."""
        with transaction(self.sessions) as session:
            dep = session.get(Deployment, dep_id)
            return view_of(session, dep, with_events=with_events) if dep else None

    def active(self) -> list[DeploymentView]:
        """Every active deployment, oldest first."""
        return self._views(select(Deployment).where(Deployment.status.in_(_ACTIVE)).order_by(Deployment.id))

    def history(self, service_key: str, limit: int = 10) -> list[DeploymentView]:
        """A service's deployments, newest first (served by ix_deployments_service_created)."""
        stmt = (
            select(Deployment)
            .where(Deployment.service_key == service_key)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .limit(limit)
        )
        return self._views(stmt, with_events=True)

    def history_for_user(self, user_id: str, limit: int = 10) -> list[DeploymentView]:
        """A person's deployments, newest first (served by ix_deployments_requester_created)."""
        stmt = (
            select(Deployment)
            .where(Deployment.requested_by == user_id)
            .order_by(Deployment.created_at.desc(), Deployment.id.desc())
            .limit(limit)
        )
        return self._views(stmt)

    def status_report(self, service_key: str | None) -> StatusReport:
        """Active deployments, their waiting approvals and the locks, of one service or all, in one consistent read.

        `/deploy status` and `/deploy status <service>` both come from here, so they cannot contradict each other.
        """
        now = self.clock()
        with transaction(self.sessions) as session:
            if is_postgres(session):  # one snapshot for every statement below
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            stmt = select(Deployment).where(Deployment.status.in_(_ACTIVE)).order_by(Deployment.id)
            if service_key is not None:
                stmt = stmt.where(Deployment.service_key == service_key)
            active = tuple(views_of(session, session.scalars(stmt).all()))  # one query for all their decisions
            locks = tuple(lock_view(lock) for lock in locks_holding(session, service_key, now))
            latest = latest_deployment(session, service_key) if service_key is not None and not active else None
            last = view_of(session, latest) if latest is not None else None
            return StatusReport(service_key, active, locks, last)

    def _views(self, stmt: Executable, *, with_events: bool = False) -> list[DeploymentView]:
        with transaction(self.sessions) as session:
            deployments: Sequence[Deployment] = session.scalars(stmt).all()
            return views_of(session, deployments, with_events=with_events)


_ACTIVE = (
    DeploymentStatus.REQUESTED,
    DeploymentStatus.IN_PROGRESS,
    DeploymentStatus.AWAITING_APPROVAL,
    DeploymentStatus.ROLLING_BACK,
)


def _busy(active: Deployment) -> Answer:
    state = active.status.value.lower().replace("_", " ")
    return refused(
        f"`{active.service_key}` already has deployment #{active.id} ({state}), "
        f"requested by {mention(active.requested_by)}. Wait for it, or `/deploy rollback {active.service_key}`.",
        rule="service_busy",
        deployment_id=active.id,
    )


def _new_deployment(
    actor: Actor,
    service: ServiceConfig,
    info: ServiceInfo | None,
    cmd: grammar.Deploy,
    stages: tuple[object, ...],
    now: datetime,
    rollback_of: int | None,
) -> Deployment:
    canary = cmd.strategy is Strategy.CANARY
    linear = cmd.strategy is Strategy.LINEAR
    shifts = cmd.strategy is not Strategy.ROLLING
    return Deployment(
        service_key=service.key,
        cluster=service.cluster,
        service=service.service,
        region=service.region,
        role_arn=service.role_arn,
        strategy=cmd.strategy,
        canary_percent=(cmd.percent or service.canary_percent) if canary else None,
        linear_step_percent=(cmd.percent or service.linear_step_percent) if linear else None,
        canary_bake_seconds=_seconds(cmd.canary_bake or service.canary_bake) if canary else None,
        step_bake_seconds=_seconds(cmd.step_bake or service.step_bake) if linear else None,
        bake_seconds=_seconds(cmd.bake if cmd.bake is not None else service.bake) if shifts else None,
        approval_stages=[str(s) for s in stages],
        image_from=info.image if info else None,  # else read once ECS answers (bot/engine/starts.py)
        image_to=cmd.image,
        taskdef_from=info.task_definition_arn if info else None,
        taskdef_to=cmd.taskdef,
        status=DeploymentStatus.REQUESTED,
        requested_by=actor.user_id,
        team_id=actor.team_id,
        channel_id=actor.channel_id,
        reason=cmd.reason,
        rollback_of_id=rollback_of,
        created_at=now,
        updated_at=now,
        tracked={
            "approval_timeout": _seconds(service.approval_timeout),
            "timeout_action": service.timeout_action.value,
            "headless": info.headless if info else None,
        },
    )


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


def rollback_command(original: DeploymentView) -> grammar.Deploy:
    """The deployment that undoes a finished one: back to its previous task definition, all at once, no pauses."""
    strategy = Strategy.ROLLING if original.strategy is Strategy.ROLLING else Strategy.BLUE_GREEN
    return grammar.Deploy(
        service=original.service_key,
        strategy=strategy,
        taskdef=original.taskdef_from,
        approve=(),
        reason=f"rollback of #{original.id}",
    )
