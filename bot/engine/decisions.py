"""Use cases: approve or roll back a deployment, lock and unlock a service. Each decision happens once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from bot.db import leases
from bot.db.sessions import transaction
from bot.db.store import add_event, latest_deployment
from bot.domain import policy
from bot.domain.catalog.loader import ServiceConfig
from bot.domain.enums import STOP_HOOK_ID, ActorSource, DecisionKind, DeploymentStatus, EventKind
from bot.domain.narration import narration
from bot.domain.readmodels import DecisionView, DeploymentView
from bot.domain.text import escape
from bot.engine.answers import Actor, Answer, mention, refused, slack_time
from bot.engine.applying import Applier
from bot.engine.deployments import Deployments, rollback_command
from bot.engine.failsafe import SYSTEM_USER, UNSEEN_REASON, tell_requester
from bot.engine.starts import QUEUED
from bot.logs import get_logger
from models import Decision, Deployment, ServiceLock

log = get_logger(__name__)
# How long a rollback waits for an approval still on its way to ECS (recorded, its sender still holding it), so that it
# stops the deployment after the approval instead of racing it: the approver is then told the truth ("approved"), not
# "that pause no longer waits". Past this the rollback goes ahead; the approval's own answer then says what ECS did.
IN_FLIGHT_WAIT = 5.0
# ECS's answers for a deployment (or service) it no longer has: explained, never relayed.


@dataclass(frozen=True)
class _Target:
    view: DeploymentView
    service: ServiceConfig


class Decisions:
    """Approve / roll back / lock / unlock, on top of the deployment use cases."""

    def __init__(
        self, deployments: Deployments, owner: str = "decisions", poll_interval: timedelta = timedelta(seconds=5)
    ) -> None:
        self.d = deployments
        self.applier = Applier(deployments, poll_interval)
        self.owner = owner  # this process's name: a click's lease on its decision ends with the process
        self._liveness: leases.Liveness | None = None

    # Finding what the person means ----------------------------------------------------------------------------
    def _target(self, dep_id: int) -> _Target | Answer:
        view = self.d.view(dep_id)
        if view is None:
            return refused(f"I can't find deployment #{dep_id}. `/deploy status` lists what is running.")
        service = self.d.catalog.get(view.service_key)
        if service is None:
            return refused(f"`{view.service_key}` is no longer in the service catalog, so I can't act on #{dep_id}.")
        return _Target(view, service)

    def _for_service(self, service_key: str) -> int | Answer:
        with transaction(self.d.sessions) as session:
            dep = latest_deployment(session, service_key)
            return dep.id if dep else refused(f"`{service_key}` has no deployment through me yet.")

    # Approve --------------------------------------------------------------------------------------------------
    def approve(self, actor: Actor, dep_id: int, hook_id: str | None = None) -> Answer:
        """Continue the PAUSE hook awaiting approval (the given one, or the only one)."""
        target = self._target(dep_id)
        if isinstance(target, Answer):
            return target
        view, service = target.view, target.service
        hook = hook_id or (view.awaiting[0].hook_id if view.awaiting else None)
        earlier = view.decision_for(hook) if hook else None
        if earlier is not None:
            return refused(_already(earlier), deployment_id=dep_id)
        if not view.is_active:
            return refused(f"Deployment #{dep_id} already ended: {_status(view)}.", deployment_id=dep_id)
        if hook is None or hook not in {h.hook_id for h in view.awaiting}:
            return refused(
                f"Nothing on #{dep_id} is waiting for approval right now ({_status(view)}).", deployment_id=dep_id
            )
        verdict = _checked(lambda: policy.may_approve(service, actor.user_id, view.requested_by, self.d.membership))
        if not verdict.allowed:
            return self._refuse(actor, view, "approve", verdict)
        return self._decide(actor, view, hook, DecisionKind.APPROVE, None)

    def approve_by_service(self, actor: Actor, service_key: str) -> Answer:
        """`/deploy approve <service>`: approve the service's deployment that is waiting."""
        found = self._for_service(service_key)
        return found if isinstance(found, Answer) else self.approve(actor, found)

    # Roll back ------------------------------------------------------------------------------------------------
    def rollback(self, actor: Actor, dep_id: int, hook_id: str | None = None, reason: str | None = None) -> Answer:
        """Roll back whatever state the deployment is in: a pause, a running deployment, or a finished one."""
        target = self._target(dep_id)
        if isinstance(target, Answer):
            return target
        view, service = target.view, target.service
        verdict = _checked(lambda: policy.may_rollback(service, actor.user_id, actor.channel_id, self.d.membership))
        if not verdict.allowed:
            return self._refuse(actor, view, "rollback", verdict)
        if view.status is DeploymentStatus.SUCCEEDED:
            return self._redeploy_previous(actor, view, service)
        if view.status is DeploymentStatus.LOST:
            return refused(_lost(view), deployment_id=dep_id)
        if not view.is_active:
            return refused(f"Nothing to roll back: #{dep_id} already ended {_status(view)}.", deployment_id=dep_id)
        if view.status is DeploymentStatus.ROLLING_BACK:
            return refused(f"#{dep_id} is already rolling back.", deployment_id=dep_id)
        if not view.ecs_deployment_arn:
            return refused(f"#{dep_id} is still starting on ECS; try again in a few seconds.", deployment_id=dep_id)
        # A pause already decided (approved a moment ago, before the next poll) is no longer one to fail: the
        # rollback then stops the deployment instead of being refused as "already approved".
        self._settle_in_flight(view)
        awaiting = {h.hook_id for h in view.awaiting if view.decision_for(h.hook_id) is None}
        hook = hook_id if hook_id in awaiting else next(iter(sorted(awaiting)), STOP_HOOK_ID)
        return self._decide(actor, view, hook, DecisionKind.ROLLBACK, reason)

    def _settle_in_flight(self, view: DeploymentView) -> None:
        """Wait (at most IN_FLIGHT_WAIT) while a decision on a waiting pause is being sent to ECS."""
        hooks = [h.hook_id for h in view.awaiting if view.decision_for(h.hook_id) is not None]
        if not hooks:
            return
        in_flight = (
            select(func.count())
            .select_from(Decision)
            .where(Decision.deployment_id == view.id, Decision.hook_id.in_(hooks))
            .where(Decision.applied_at.is_(None), Decision.error.is_(None), Decision.lease_owner.is_not(None))
        )
        deadline = time.monotonic() + IN_FLIGHT_WAIT
        while time.monotonic() < deadline:
            with transaction(self.d.sessions) as session:
                if not session.scalar(in_flight):
                    return
            time.sleep(0.02)

    def roll_back_unseen(self, dep_id: int, hook: str) -> Answer:
        """The bot's own rollback of a CONTINUE-on-timeout pause nobody could see (bot/engine/failsafe.py)."""
        view = self.d.view(dep_id)
        if view is None:
            return refused(f"I can't find deployment #{dep_id}.")
        actor = Actor(user_id=SYSTEM_USER, channel_id=view.channel_id, source=ActorSource.SYSTEM)
        answer = self._decide(actor, view, hook, DecisionKind.ROLLBACK, UNSEEN_REASON)
        with transaction(self.d.sessions) as session:
            tell_requester(session, session.get_one(Deployment, dep_id), hook, self.d.clock())
        return answer

    def rollback_by_service(self, actor: Actor, service_key: str, reason: str | None) -> Answer:
        """`/deploy rollback <service>`: from any channel, for everyone to see."""
        found = self._for_service(service_key)
        if isinstance(found, Answer):
            return found
        answer = self.rollback(actor, found, None, reason)
        return Answer(
            answer.text, answer.ok, public=answer.ok, deployment_id=answer.deployment_id or found, rule=answer.rule
        )

    def _redeploy_previous(self, actor: Actor, view: DeploymentView, service: ServiceConfig) -> Answer:
        with transaction(self.d.sessions) as session:
            latest = latest_deployment(session, view.service_key)
        if latest is None or latest.id != view.id:
            newer = f"#{latest.id}" if latest else "a newer one"
            return refused(
                f"#{view.id} is not the latest deployment of `{view.service_key}` ({newer} is); roll back that."
            )
        if not view.taskdef_from:
            return refused(f"I don't know what ran before #{view.id}, so I can't roll it back.")
        blocked = self.d.blocked_by(service.key)
        if blocked:
            return blocked
        where = narration(service, actor.channel_id, self.d.channels)
        if where.channel is None:
            return refused(where.text)
        info = self.d.read_service(service)  # None while ECS is unavailable: the rollback's start is queued
        if isinstance(info, Answer):
            return info
        here = replace(actor, channel_id=where.channel)
        answer = self.d.create_and_start(here, service, info, rollback_command(view), (), rollback_of=view.id)
        if answer.ok:
            later = f" {QUEUED}" if answer.text.startswith(QUEUED) else ""
            return Answer(
                f"Rolling `{view.service_key}` back to {view.taskdef_from.rsplit('/', 1)[-1]} with deployment "
                f"#{answer.deployment_id} (undoing #{view.id}).{later}",
                deployment_id=answer.deployment_id,
            )
        return answer

    # The decision itself: recorded once, then sent to ECS -----------------------------------------------------
    def _decide(self, actor: Actor, view: DeploymentView, hook: str, kind: DecisionKind, reason: str | None) -> Answer:
        owner = self._record(actor, view, hook, kind, reason)
        return owner if isinstance(owner, Answer) else self.apply(view.id, hook, owner)

    def _record(
        self, actor: Actor, view: DeploymentView, hook: str, kind: DecisionKind, reason: str | None
    ) -> str | Answer:
        """Record the decision under a lease the caller then holds (its owner name), or say who decided first."""
        now = self.d.clock()
        # The click path owns the decision from the moment it exists, until it is done or its process dies: the
        # process's liveness lock is held first, so no other process can take this lease for a dead one's.
        self._liveness = self._liveness or leases.liveness(self.d.sessions, self.owner)
        owner = leases.claim_name(self.owner, f"click:{uuid.uuid4().hex[:12]}")
        try:
            with transaction(self.d.sessions) as session:
                session.add(
                    Decision(
                        deployment_id=view.id,
                        hook_id=hook,
                        kind=kind,
                        user_id=actor.user_id,
                        source=actor.source,
                        channel_id=actor.channel_id,
                        reason=reason,
                        decided_at=now,
                        lease_owner=owner,
                        lease_until=self.applier.lease_until(now),
                    )
                )
        except IntegrityError:
            # A double tap, or an approve racing a rollback: the first decision stands, nothing reaches ECS twice.
            earlier = (self.d.view(view.id) or view).decision_for(hook)
            return refused(
                _already(earlier) if earlier else "Someone decided at the same moment.", deployment_id=view.id
            )
        return owner

    def apply(self, dep_id: int, hook: str, owner: str) -> Answer:
        """Send a recorded decision whose lease `owner` holds, and record the outcome (bot/engine/applying.py)."""
        return self.applier.send(dep_id, hook, owner)

    def retry(
        self, dep_id: int, hook: str, owner: str, decided_before: datetime, dead: str | None = None
    ) -> Answer | None:
        """A reconciler's retry of an unapplied decision: under its lease (taken over from `dead`, a process that
        died holding it), and only if ECS shows it did not take it."""
        if not self.applier.claim(dep_id, hook, owner, decided_before, dead):
            return None  # someone holds it (the click path still sending), or it is settled
        return self.applier.send(dep_id, hook, owner, describe_first=True)

    def _refuse(self, actor: Actor, view: DeploymentView, action: str, verdict: policy.Verdict) -> Answer:
        answer = self.d.refuse(actor, view.service_key, action, verdict)
        return Answer(answer.text, ok=False, rule=answer.rule, deployment_id=view.id)

    # Locks ----------------------------------------------------------------------------------------------------
    def lock(self, actor: Actor, service: ServiceConfig, reason: str | None) -> Answer:
        """Freeze a service: no deployment starts until it is unlocked."""
        verdict = policy.may_lock(service, actor.user_id, self.d.membership)
        if not verdict.allowed:
            return self.d.refuse(actor, service.key, "lock", verdict)
        now = self.d.clock()
        try:
            return self._lock(actor, service, reason, now)
        except IntegrityError:
            # Two people locked it at the same moment: the first lock stands.
            return refused(f"`{service.key}` was locked by someone else at the same moment.")

    def _lock(self, actor: Actor, service: ServiceConfig, reason: str | None, now: datetime) -> Answer:
        with transaction(self.d.sessions) as session:
            existing = session.get(ServiceLock, service.key)
            if existing is not None and (existing.until is None or existing.until > now):
                return refused(
                    f"`{service.key}` is already locked by {mention(existing.locked_by)} since "
                    f"{slack_time(existing.locked_at)}."
                )
            if existing is not None:
                session.delete(existing)
                session.flush()
            session.add(ServiceLock(service_key=service.key, locked_by=actor.user_id, reason=reason, locked_at=now))
            add_event(
                session,
                service_key=service.key,
                kind=EventKind.LOCKED,
                key=f"lock:{uuid.uuid4().hex}",
                at=now,
                actor=actor.user_id,
                detail={"reason": reason, "channel": actor.channel_id},
            )
        why = f": {escape(reason)}" if reason else ""
        return Answer(
            f"🔒 `{service.key}` is locked by {mention(actor.user_id)}{why}. No deployment starts until "
            f"`/deploy unlock {service.key}`.",
            public=True,
        )

    def unlock(self, actor: Actor, service: ServiceConfig) -> Answer:
        """Lift a service's freeze."""
        verdict = policy.may_unlock(service, actor.user_id, self.d.membership)
        if not verdict.allowed:
            return self.d.refuse(actor, service.key, "unlock", verdict)
        now = self.d.clock()
        with transaction(self.d.sessions) as session:
            lock = session.get(ServiceLock, service.key)
            if lock is None:
                return refused(f"`{service.key}` is not locked.")
            session.delete(lock)
            add_event(
                session,
                service_key=service.key,
                kind=EventKind.UNLOCKED,
                key=f"unlock:{uuid.uuid4().hex}",
                at=now,
                actor=actor.user_id,
                detail={"locked_by": lock.locked_by, "reason": lock.reason},
            )
        return Answer(f"🔓 `{service.key}` is unlocked by {mention(actor.user_id)}.", public=True)


def _checked(check: Callable[[], policy.Verdict]) -> policy.Verdict:
    """The policy's verdict; when Slack could not say who is in a group, a refusal saying so (then recorded like
    any other), so a click is never lost to a Slack outage: the person is told to try again in a minute."""
    try:
        return check()
    except policy.MembershipUnavailable as exc:
        log.warning("user-group membership unavailable", usergroup=exc.group_id)
        return policy.Verdict.refuse("membership_unavailable", policy.MEMBERSHIP_UNAVAILABLE)


def _already(decision: DecisionView) -> str:
    verb = "approved" if decision.kind is DecisionKind.APPROVE else "rolled back"
    return f"Already {verb} by {mention(decision.user_id)} at {slack_time(decision.decided_at)}."


def _lost(view: DeploymentView) -> str:
    key = view.service_key
    before = view.taskdef_from.rsplit("/", 1)[-1] if view.taskdef_from else "<family:revision>"
    return (
        f"Nothing to roll back on ECS: it no longer knows #{view.id} (the service or the deployment was deleted), "
        f"so I stopped following it. To run what ran before, deploy it: `/deploy {key} taskdef={before}`"
    )


def _verb(kind: DecisionKind) -> str:
    return "Approval" if kind is DecisionKind.APPROVE else "Rollback"


def _status(view: DeploymentView) -> str:
    return view.status.value.lower().replace("_", " ")
