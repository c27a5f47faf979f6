"""Sending a recorded decision to ECS exactly once, and recording what ECS did with it.

ContinueServiceDeployment and StopServiceDeployment take no client token, so a decision has one owner at a time:
a lease on its row (taken with the row by the click path, or by a reconciler retrying it). The gateway sends it in
one attempt (no botocore resend); after any error or timeout the deployment is described and ECS's state decides
(bot/domain/effects.py): a decision ECS took is recorded as applied, never as refused, and never sent again.
Recording retries on a concurrent write (the reconciler updates the same deployment row), so an ECS success never
turns into "Sorry…".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from bot.db import leases
from bot.db.renewal import Renewal
from bot.db.sessions import transaction
from bot.db.store import queue_root_update, record
from bot.domain.durations import humanize
from bot.domain.effects import decision_effect
from bot.domain.enums import ACTIVE_STATUSES, STOP_HOOK_ID, DecisionEffect, DecisionKind, EventKind
from bot.domain.snapshot import HookAction
from bot.ecs.gateway import EcsError, EcsUnavailable
from bot.engine.answers import Answer, mention, refused
from bot.engine.deployments import Deployments
from bot.logs import get_logger
from models import Decision, Deployment

log = get_logger(__name__)
# Longer than one call (connect + read timeouts) and the describe after it: the owner is done well before. It is
# renewed while the owner sends all the same (bot/db/renewal.py), so a send slower than that is never taken over.
DECISION_LEASE = timedelta(minutes=5)
# A decision ECS did not take (busy) is sent again this long after it was decided, at the next pass: "in a few
# seconds", as the person is told. A decision still being sent is guarded by its lease, not by its age.
RETRY_AFTER = timedelta(seconds=5)
RECORD_ATTEMPTS = 5
CONCURRENT = (StaleDataError, IntegrityError, OperationalError)
FORGOTTEN_CODES = frozenset(
    {"ServiceDeploymentNotFoundException", "ServiceNotFoundException"}
)  # version check lost, or a deadlock: write again


@dataclass(frozen=True)
class _Sending:
    dep_id: int
    hook: str
    kind: DecisionKind
    user: str
    arn: str
    region: str
    role: str | None
    where: dict[str, Any]

    @property
    def verb(self) -> str:
        return "Approval" if self.kind is DecisionKind.APPROVE else "Rollback"


class Applier:
    """Sends decisions to ECS under their lease and records the outcome."""

    def __init__(self, deployments: Deployments, poll_interval: timedelta = timedelta(seconds=5)) -> None:
        self.d = deployments
        # A decision ECS could not take goes again at the first pass after RETRY_AFTER (bot/engine/reconciler.py).
        self.retry_within = RETRY_AFTER + poll_interval

    def lease_until(self, now: datetime) -> datetime:
        """Until when a lease taken now holds."""
        return now + DECISION_LEASE

    def retryable(
        self, decided_before: datetime, liveness: leases.Liveness | None
    ) -> list[tuple[int, str, str | None]]:
        """Unapplied decisions a retry may take, whichever deployments a pass claimed (a quiet deployment may not be
        due for minutes): older than `decided_before` and free, or held by a process that died (at once, whatever
        their age); each with the dead owner whose lease it takes over, if any."""
        now = self.d.clock()
        # ix_decisions_unsettled; a deployment that ended (or was marked lost) takes no decision any more
        active = select(Deployment.id).where(Deployment.status.in_(ACTIVE_STATUSES))
        unsettled = (Decision.applied_at.is_(None), Decision.error.is_(None), Decision.deployment_id.in_(active))
        with transaction(self.d.sessions) as session:
            free = session.execute(
                select(Decision.deployment_id, Decision.hook_id).where(
                    *unsettled, Decision.decided_at < decided_before, _free(now)
                )
            ).all()
            held = session.execute(
                select(Decision.deployment_id, Decision.hook_id, Decision.lease_owner).where(
                    *unsettled, Decision.lease_until > now
                )
            ).all()
            dead = liveness.dead_claims(session, {o for _, _, o in held}) if liveness and held else set()
        taken: list[tuple[int, str, str | None]] = [(dep, hook, None) for dep, hook in free]
        return taken + [(dep, hook, owner) for dep, hook, owner in held if owner in dead]

    def claim(self, dep_id: int, hook: str, owner: str, decided_before: datetime, dead: str | None = None) -> bool:
        """Take the lease of an unapplied decision older than `decided_before` that nobody holds, or that `dead`
        (a process that died) holds (atomic: of two survivors, one takes it)."""
        now = self.d.clock()
        free = (Decision.decided_at < decided_before) & _free(now)
        if dead is not None:
            free = free | (Decision.lease_owner == dead)
        with transaction(self.d.sessions) as session:
            taken = session.execute(
                update(Decision)
                .where(
                    Decision.deployment_id == dep_id,
                    Decision.hook_id == hook,
                    Decision.applied_at.is_(None),
                    Decision.error.is_(None),
                    free,
                )
                .values(lease_owner=owner, lease_until=self.lease_until(now))
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(taken, "rowcount", 0) == 1)

    def send(self, dep_id: int, hook: str, owner: str, *, describe_first: bool = False) -> Answer:
        """Send the decision whose lease `owner` holds, and record the outcome; the lease is released on every path."""
        sending = self._load(dep_id, hook)
        try:
            with Renewal(partial(self._renew, sending, owner), DECISION_LEASE / 3, what="decision lease"):
                return self._send(sending, owner, describe_first)
        finally:
            self._release(sending, owner)

    def _send(self, sending: _Sending, owner: str, describe_first: bool) -> Answer:
        hook = sending.hook
        if describe_first:  # a retry: the first call may have landed although its answer never came
            effect = self._effect(sending)
            if effect is None or effect is not DecisionEffect.NOT_YET:
                return self._settle(sending, owner, effect, None)
        try:
            self._call(sending)
        except EcsError as exc:
            return self._settle(sending, owner, self._effect(sending), exc)
        self._record(sending, owner, None)
        log.info("decision sent to ECS", **sending.where, decision=sending.kind, hook_id=hook, decided_by=sending.user)
        return _sent(sending)

    # ECS ------------------------------------------------------------------------------------------------------
    def _call(self, s: _Sending) -> None:
        if s.hook == STOP_HOOK_ID:
            self.d.ecs.stop(s.region, s.role, s.arn)
        else:
            action: HookAction = "CONTINUE" if s.kind is DecisionKind.APPROVE else "ROLLBACK"
            self.d.ecs.continue_hook(s.region, s.role, s.arn, s.hook, action)

    def _effect(self, s: _Sending) -> DecisionEffect | None:
        """What ECS's state says of the decision; None when ECS cannot be asked right now."""
        try:
            return decision_effect(s.kind, s.hook, self.d.ecs.describe_one(s.region, s.role, s.arn))
        except EcsError as exc:
            log.warning("cannot read the deployment after a decision", **s.where, hook_id=s.hook, error=str(exc))
            return None

    def _settle(self, s: _Sending, owner: str, effect: DecisionEffect | None, exc: EcsError | None) -> Answer:
        """The outcome of a decision after an error (or a describe before a retry)."""
        error = f"{exc.code}: {exc.message}" if exc else None
        if effect is DecisionEffect.TOOK_EFFECT:
            log.info("decision took effect on ECS", **s.where, decision=s.kind, hook_id=s.hook, answer_lost=error)
            self._record(s, owner, None)
            return _sent(s)
        if exc is not None and exc.code in FORGOTTEN_CODES:
            self._record(s, owner, error)
            return refused(_forgotten(s.dep_id, s.kind), deployment_id=s.dep_id)
        if effect is DecisionEffect.OVERTAKEN:
            log.warning("decision overtaken on ECS", **s.where, decision=s.kind, hook_id=s.hook, error=error)
            self._record(s, owner, f"overtaken: {_gone(s)}" + (f" ({error})" if error else ""))
            return refused(f"{s.verb} not applied: {_gone(s)}.", deployment_id=s.dep_id)
        if exc is None or isinstance(exc, EcsUnavailable) or effect is None:
            # ECS did not take it (or cannot say): it waits for a reconciler to retry it once this lease ends.
            log.warning(
                "ECS busy: the decision waits for a retry", **s.where, decision=s.kind, hook_id=s.hook, error=error
            )
            return Answer(
                f"{s.verb} recorded; ECS is busy, so I'll send it again within {humanize(self.retry_within)}.",
                deployment_id=s.dep_id,
            )
        log.warning("ECS refused the decision", **s.where, decision=s.kind, hook_id=s.hook, error=error)
        self._record(s, owner, error)
        return refused(f"ECS refused the {s.verb.lower()}: {exc.message}", deployment_id=s.dep_id)

    # The database ---------------------------------------------------------------------------------------------
    def _load(self, dep_id: int, hook: str) -> _Sending:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            decision = session.query(Decision).filter_by(deployment_id=dep_id, hook_id=hook).one()
            arn = dep.ecs_deployment_arn or ""
            where = {"deployment_id": dep_id, "service": dep.service_key, "ecs_arn": arn or None}
            return _Sending(dep_id, hook, decision.kind, decision.user_id, arn, dep.region, dep.role_arn, where)

    def _record(self, s: _Sending, owner: str, error: str | None) -> None:
        """Store the outcome; a concurrent write to the deployment (the reconciler) makes it write again."""
        for attempt in range(1, RECORD_ATTEMPTS + 1):
            try:
                self._write(s, owner, error)
                return
            except CONCURRENT as exc:
                if attempt == RECORD_ATTEMPTS:
                    raise
                log.info("decision outcome written again after a concurrent write", hook_id=s.hook, error=str(exc))

    def _write(self, s: _Sending, owner: str, error: str | None) -> None:
        now = self.d.clock()
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, s.dep_id)
            decision = session.query(Decision).filter_by(deployment_id=s.dep_id, hook_id=s.hook).one()
            if decision.applied_at is not None or decision.error is not None:
                return  # already settled: that outcome stands
            decision.applied_at = None if error else now
            decision.error = error
            decision.lease_owner, decision.lease_until = None, None
            if error is None:
                record(
                    session,
                    dep,
                    EventKind.DECISION,
                    f"decision:{s.hook}",
                    now,
                    actor=decision.user_id,
                    stage=(dep.tracked.get("hook_info", {}).get(s.hook) or {}).get("stage"),
                    detail={
                        "decision": decision.kind.value,
                        "hook_id": s.hook,
                        "user": decision.user_id,
                        "source": decision.source,
                        "reason": decision.reason,
                        "channel": decision.channel_id,
                    },
                )
            dep.updated_at = now  # bumps the version: the root message shows the decision at once
            if error is None and dep.lease_owner is None:
                dep.lease_until = None  # described at the next pass, however long a quiet deployment may wait
            session.flush()
            queue_root_update(session, dep, now)

    def _renew(self, s: _Sending, owner: str) -> None:
        """Extend the lease `owner` still holds by a lease from now."""
        with transaction(self.d.sessions) as session:
            session.execute(
                update(Decision)
                .where(Decision.deployment_id == s.dep_id, Decision.hook_id == s.hook, Decision.lease_owner == owner)
                .values(lease_until=self.lease_until(self.d.clock()))
                .execution_options(synchronize_session=False)
            )

    def _release(self, s: _Sending, owner: str) -> None:
        with transaction(self.d.sessions) as session:
            session.execute(
                update(Decision)
                .where(Decision.deployment_id == s.dep_id, Decision.hook_id == s.hook, Decision.lease_owner == owner)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )


def _free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the decision's lease."""
    return (Decision.lease_until.is_(None)) | (Decision.lease_until <= now)


def _sent(s: _Sending) -> Answer:
    return Answer(f"{s.verb} sent for #{s.dep_id} by {mention(s.user)}.", deployment_id=s.dep_id)


def _gone(s: _Sending) -> str:
    if s.hook == STOP_HOOK_ID:
        return "the deployment had already ended on ECS"
    return "on ECS that pause no longer waits (it ended another way), or the deployment ended"


def _forgotten(dep_id: int, kind: DecisionKind) -> str:
    return (
        f"ECS no longer knows #{dep_id}'s deployment (the service or the deployment was deleted), so there is "
        f"nothing to {'approve' if kind is DecisionKind.APPROVE else 'roll back'}. I mark it lost once ECS has "
        "answered so for a few polls; the service then takes new deployments."
    )
