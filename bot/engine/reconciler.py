"""One pass over active deployments: describe them on ECS, advance the machine, store events and messages."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.db import leases
from bot.db.sessions import is_postgres, transaction
from bot.db.store import add_events, outbox_row, queue_many
from bot.domain.durations import pause_minutes
from bot.domain.enums import (
    ACTIVE_STATUSES,
    STOP_HOOK_ID,
    DecisionKind,
    DeploymentStatus,
    EventKind,
    LifecycleStage,
    OutboxKind,
    Pace,
    RenderKind,
    RollbackCause,
    Telling,
)
from bot.domain.machine.advance import advance
from bot.domain.machine.lost import LOST_REASON, missing_pass
from bot.domain.machine.state import Event, Tracked
from bot.domain.outbox import event_key, incident_key, render_payload, root_update_key
from bot.domain.pacing import Budget, TokenBucket, next_describe, pace_of, quiet_interval
from bot.domain.readmodels import awaiting_hooks
from bot.domain.reminders import due_reminders
from bot.domain.snapshot import ecs_ended, ecs_started
from bot.domain.telling import closing_channels, telling
from bot.ecs.gateway import EcsError, EcsUnavailable, Snapshot, chunks
from bot.engine import metrics
from bot.engine.decisions import Decisions
from bot.engine.deployments import Deployments
from bot.engine.failsafe import unseen_pauses
from bot.engine.starts import CLOCK_SKEW, retry_delay
from bot.logs import bound, get_logger
from models import Decision, Deployment, DeploymentEvent

log = get_logger(__name__)
NEVER_STARTED_AFTER = timedelta(minutes=10)
# A decision younger than this may still be on its way to ECS from the handler that took it.
DECISION_RETRY_AFTER = timedelta(minutes=2)
MISSING_PASSES = "missing_passes"  # tracked: consecutive passes ECS answered the deployment in `failures`


@dataclass
class PassReport:
    """What one pass did (for logs, metrics and tests)."""

    claimed: int = 0
    described: int = 0
    events: int = 0
    delayed: int = 0
    errors: list[str] = field(default_factory=list)
    live: int = 0  # active deployments in the database, claimed or not
    stretch: timedelta = timedelta(0)  # how long quiet deployments wait between describes (0: every pass)


@dataclass(frozen=True)
class _Claim:
    id: int
    arn: str | None
    region: str
    role_arn: str | None


class Reconciler:
    """Keeps every active deployment's row, timeline and Slack messages in step with ECS."""

    def __init__(
        self,
        decisions: Decisions,
        *,
        owner: str,
        lease: timedelta = timedelta(seconds=60),
        claim_limit: int | None = None,
        backoff: timedelta = timedelta(seconds=15),
        interval: timedelta = timedelta(seconds=5),
        budget: Budget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.decisions = decisions
        self.d: Deployments = decisions.d
        self.owner = owner
        self.lease = lease
        self.backoff = backoff
        self.interval = interval
        self.budget = budget or Budget()
        # Never more per pass than the describe budget allows in one poll interval (claim_limit may lower it).
        self.claim_limit = min(claim_limit or self.budget.per_pass(interval), self.budget.per_pass(interval))
        self._sleep, self._monotonic = sleep, monotonic
        self._bucket = TokenBucket.full(self.budget.calls_per_second, self.budget.burst, monotonic())
        self._liveness: leases.Liveness | None = None

    def reconcile_once(self) -> PassReport:
        """Claim, describe in batches of 20, and write each batch in one transaction."""
        started = time.monotonic()
        report = PassReport()
        claims = self._claim(self.d.clock(), report)
        report.claimed = len(claims)
        try:
            self._pass(claims, report)
        finally:
            # Whatever went wrong, nothing this pass claimed stays leased: the next pass (any replica) takes it.
            self._release([c.id for c in claims], None)
        log.debug("reconcile pass", claimed=report.claimed, live=report.live, stretch=report.stretch.total_seconds())
        metrics.count_pass(report.claimed, report.delayed, len(report.errors), time.monotonic() - started)
        return report

    def _pass(self, claims: list[_Claim], report: PassReport) -> None:
        """Retry old decisions, find unstarted deployments, describe and write the rest; one failure stops nothing."""
        self._retry_pending_decisions([c.id for c in claims], report)
        groups: dict[tuple[str, str | None], list[_Claim]] = defaultdict(list)
        for claim in claims:
            if claim.arn is None:
                _guarded(report, claim.id, "unstarted deployment", self._unstarted, claim)
            else:
                groups[(claim.region, claim.role_arn)].append(claim)
        for (region, role), members in groups.items():
            for batch in chunks([str(c.id) for c in members]):
                self._batch(region, role, [c for c in members if str(c.id) in batch], report)
        self._roll_back_unseen([c.id for c in claims], report)

    def _roll_back_unseen(self, ids: Sequence[int], report: PassReport) -> None:
        """A pause set to CONTINUE at its timeout whose approval request never reached Slack is rolled back."""
        if not ids:
            return
        with transaction(self.d.sessions) as session:
            unseen = unseen_pauses(session, self.d.catalog, ids, self.d.clock())
        for dep_id, hook in unseen:
            log.warning("deployment %s: approval request for %s never shown; rolling back", dep_id, hook)
            _guarded(report, dep_id, "unseen pause", self.decisions.roll_back_unseen, dep_id, hook)

    # Claiming -------------------------------------------------------------------------------------------------
    def _dead_owners(self, session: Session, now: datetime) -> set[str]:
        """Reconcilers whose process is gone while their leases run: a lease ends with its owner."""
        owners = session.scalars(
            select(Deployment.lease_owner)
            .distinct()
            .where(Deployment.status.in_(ACTIVE_STATUSES), Deployment.lease_until > now)
        )
        # Held for as long as this object lives (the registry keeps it only while someone does).
        self._liveness = self._liveness or leases.liveness(self.d.sessions, self.owner)
        return self._liveness.dead(session, owners)

    def _claim(self, now: datetime, report: PassReport) -> list[_Claim]:
        """Lease the due deployments, least recently described first, at most what the budget allows per pass."""
        with transaction(self.d.sessions) as session:
            report.stretch = self._stretch(session, report)
            free = (Deployment.lease_until.is_(None)) | (Deployment.lease_until <= now)
            dead = self._dead_owners(session, now)
            if dead:  # a dead owner's leases ended with it (an unowned lease_until is a due time: it stands)
                free = free | Deployment.lease_owner.in_(sorted(dead))
            stmt = (
                select(Deployment.id, Deployment.ecs_deployment_arn, Deployment.region, Deployment.role_arn)
                .where(Deployment.status.in_(ACTIVE_STATUSES))
                .where(free)
                # A written deployment's lease_until is when it was described (or when it is next due): the
                # oldest go first, so past the budget every deployment takes its turn and none starves.
                .order_by(Deployment.lease_until.asc().nulls_first(), Deployment.id)
                .limit(self.claim_limit)
            )
            if is_postgres(session):
                # Replicas share the work: rows another pass is claiming right now are skipped, not waited for.
                stmt = stmt.with_for_update(skip_locked=True, of=Deployment)
            claims = [_Claim(*row) for row in session.execute(stmt)]
            if claims:
                session.execute(
                    update(Deployment)
                    .where(Deployment.id.in_([c.id for c in claims]))
                    .values(lease_owner=self.owner, lease_until=now + self.lease)
                    .execution_options(synchronize_session=False)
                )
        return claims

    def _stretch(self, session: Session, report: PassReport) -> timedelta:
        """Count live deployments by pace; how long the quiet ones may wait so that all fit the budget."""
        counts = {Pace.MOVING: 0, Pace.QUIET: 0}
        stmt = (
            select(Deployment.status, Deployment.lifecycle_stage, func.count())
            .where(Deployment.status.in_(ACTIVE_STATUSES))
            .group_by(Deployment.status, Deployment.lifecycle_stage)
        )
        for status, stage, n in session.execute(stmt):
            counts[pace_of(status, LifecycleStage(stage) if stage else None)] += int(n)
        report.live = sum(counts.values())
        capacity = self.budget.per_pass(self.interval)
        return quiet_interval(counts[Pace.MOVING], counts[Pace.QUIET], capacity, self.interval, self.budget.max_quiet)

    def _paced(self) -> None:
        """Wait for a token of the describe budget, so a pass never asks ECS faster than it sustains."""
        wait = self._bucket.take(self._monotonic())
        if wait > 0:
            self._sleep(wait)

    def _release(self, ids: Iterable[int], until: datetime | None) -> None:
        with transaction(self.d.sessions) as session:
            session.execute(
                update(Deployment)
                .where(Deployment.id.in_(list(ids)), Deployment.lease_owner == self.owner)
                .values(lease_owner=None, lease_until=until)
                .execution_options(synchronize_session=False)
            )

    # Deployments that have no ECS ARN yet ---------------------------------------------------------------------
    def _unstarted(self, claim: _Claim) -> None:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, claim.id)
            sent, target, created = bool(dep.tracked.get("update_sent")), dep.taskdef_to, dep.created_at
            queued, attempts = bool(dep.tracked.get("start_queued")), int(dep.tracked.get("start_attempts") or 0)
            # Written before UpdateService: a crash after it leaves a start that may have reached ECS.
            asked = dep.tracked.get("asked_at") is not None
        if queued:  # ECS was unavailable when asked: the start is retried here, with a growing back-off
            self._paced()
            still = self.d.starts.resume(claim.id)
            self._release([claim.id], self.d.clock() + retry_delay(attempts + 1) if still else None)
            return
        service = self.d.catalog.get(dep.service_key)
        look = (sent or asked) and target and service is not None
        try:
            if look:
                self._paced()  # ListServiceDeployments shares the describe budget
            arn = (
                self.d.ecs.find_service_deployment(service, target, created - CLOCK_SKEW)
                if look and service and target
                else None
            )
        except EcsError as exc:
            log.warning("cannot look up the ECS deployment yet", deployment_id=claim.id, error=str(exc))
            arn = None
        if arn and self.d.arn_taken(arn, claim.id):
            arn = None  # the newest match is an earlier deployment of ours (ECS's createdAt within our skew)
        if arn:
            self.d.attach(claim.id, arn)
        elif self.d.clock() - created > NEVER_STARTED_AFTER:
            self.d.fail(claim.id, "ECS never reported this deployment; it was not started.")
        self._release([claim.id], None)

    def _retry_pending_decisions(self, ids: Sequence[int], report: PassReport) -> None:
        """Decisions older than DECISION_RETRY_AFTER that nobody holds and ECS shows not taken are sent again."""
        if not ids:
            return
        now = self.d.clock()
        # A younger decision may still be in flight on the click path: only its owner sends it then.
        cutoff = now - DECISION_RETRY_AFTER
        with transaction(self.d.sessions) as session:
            pending = session.execute(
                select(Decision.deployment_id, Decision.hook_id).where(
                    Decision.deployment_id.in_(ids),
                    Decision.applied_at.is_(None),
                    Decision.error.is_(None),
                    Decision.decided_at < cutoff,
                    (Decision.lease_until.is_(None)) | (Decision.lease_until <= now),
                )
            ).all()
        for dep_id, hook in pending:
            # Under the decision's lease, and only when ECS shows it did not take it (described first).
            _guarded(report, dep_id, "decision retry", self.decisions.retry, dep_id, hook, self.owner, cutoff)

    # Describing and writing one batch -------------------------------------------------------------------------
    def _batch(self, region: str, role: str | None, claims: list[_Claim], report: PassReport) -> None:
        self._paced()
        try:
            result = self.d.ecs.describe(region, role, [c.arn for c in claims if c.arn])
        except EcsUnavailable as exc:
            # Throttling is a delay, never a failure: try this batch again after a back-off.
            log.info("ECS busy describing %d deployments: %s", len(claims), exc)
            report.delayed += len(claims)
            self._release([c.id for c in claims], self.d.clock() + self.backoff)
            return
        except EcsError as exc:
            report.errors.append(str(exc))
            self._release([c.id for c in claims], self.d.clock() + self.backoff)
            return
        report.described += len(result.snapshots)
        snapshots, missing = result.by_arn(), frozenset(result.missing_arns)
        try:
            report.events += self.write_batch(claims, snapshots, report.stretch, missing)
        except Exception as exc:
            # A concurrent write (another replica, a decision being recorded) or one bad row: write the batch's
            # deployments one by one, from fresh rows, so one failure costs one deployment one pass, no more.
            log.info("batch written one by one after an error", error=f"{type(exc).__name__}: {exc}")
            for claim in claims:
                _guarded(report, claim.id, "deployment", self.write_batch, [claim], snapshots, report.stretch, missing)

    def write_batch(
        self,
        claims: Sequence[_Claim],
        snapshots: dict[str, Snapshot],
        stretch: timedelta = timedelta(0),
        missing: frozenset[str] = frozenset(),
    ) -> int:
        """Advance every deployment of the batch and store states, events and messages in one transaction.

        Each one is released until it is next due: now (the next pass) if it moves, after `stretch` if it is quiet.
        A deployment ECS answered in `failures` (`missing`) counts one more pass missing, and ends LOST after a few
        (described again on the next pass, whatever its pace: a few passes, not a few stretches).
        """
        now = self.d.clock()
        with transaction(self.d.sessions) as session:
            ids = [c.id for c in claims]
            deps = {d.id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(ids)))}
            decisions = _applied_decisions(session, ids)
            found: list[tuple[Deployment, Event]] = []
            touched: list[Deployment] = []
            with session.no_autoflush:  # one UPDATE per deployment, at the flush below
                for claim in claims:
                    dep, snapshot = deps.get(claim.id), snapshots.get(claim.arn or "")
                    if dep is None or dep.lease_owner != self.owner:
                        continue
                    with bound(deployment_id=dep.id, service=dep.service_key, ecs_arn=claim.arn):
                        if snapshot is not None:
                            events, changed = self._advance(session, dep, snapshot, now, decisions.get(dep.id, []))
                        elif claim.arn in missing:
                            events, changed = _missing(dep, now)
                        else:
                            continue
                    found += [(dep, e) for e in events]
                    if events or changed:
                        dep.updated_at = now
                        touched.append(dep)
                    pace = pace_of(dep.status, dep.lifecycle_stage, baking=bool(dep.tracked.get("bake_until")))
                    due = now if snapshot is None else next_describe(pace, now, stretch)
                    dep.lease_owner, dep.lease_until = None, due
            session.flush()
            stored = self._store(session, found, touched, now)
        _narrate(found, touched)
        return stored

    def _advance(
        self, session: Session, dep: Deployment, snapshot: Snapshot, now: datetime, decisions: Sequence[Decision]
    ) -> tuple[list[Event], bool]:
        """Apply the machine to one deployment; return its new events and whether what the root shows changed."""
        by_hook = {d.hook_id: (d.kind, d.user_id) for d in decisions if d.hook_id != STOP_HOOK_ID}
        stopped_by = next(
            (d.user_id for d in decisions if d.hook_id == STOP_HOOK_ID and d.kind is DecisionKind.ROLLBACK), None
        )
        tracked = Tracked.from_json(dep.tracked)
        dep.tracked = {k: v for k, v in dep.tracked.items() if k != MISSING_PASSES}  # found again: count afresh
        state, events = advance(tracked, snapshot, now, by_hook, stopped_by=stopped_by)
        before = (dep.status, dep.lifecycle_stage, dep.production_weight, dep.test_weight)
        _apply_state(dep, state, snapshot)
        after = (dep.status, dep.lifecycle_stage, dep.production_weight, dep.test_weight)
        return events + self._reminders(session, dep, now), before != after

    def _store(
        self, session: Session, found: list[tuple[Deployment, Event]], touched: list[Deployment], now: datetime
    ) -> int:
        """Insert the batch's events, then their thread replies, incident posts and root updates, in bulk."""
        stored = add_events(
            session,
            [
                {
                    "deployment_id": dep.id,
                    "service_key": dep.service_key,
                    "kind": e.kind,
                    "key": e.key,
                    "stage": e.stage,
                    "detail": dict(e.detail),
                    "actor": e.actor,
                    "at": now,
                }
                for dep, e in found
            ],
        )
        rows = []
        for dep, event in found:
            event_id = stored.get((dep.id, event.key))
            if event_id is not None:
                rows += self._messages(session, dep, event, event_id, now)
        rows += [
            outbox_row(
                key=root_update_key(d.id, d.version),
                kind=OutboxKind.UPDATE_ROOT,
                channel_id=d.channel_id,
                payload=render_payload(RenderKind.ROOT),
                deployment_id=d.id,
                at=now,
            )
            for d in touched
        ]
        queue_many(session, rows)
        return len(stored)

    def _messages(
        self, session: Session, dep: Deployment, event: Event, event_id: int, now: datetime
    ) -> list[dict[str, object]]:
        rows = []
        if telling(event.kind, event.detail) is Telling.REPLY:  # the rest only changes the root message
            rows.append(
                outbox_row(
                    key=event_key(dep.id, event_id),
                    channel_id=dep.channel_id,
                    in_thread=True,
                    payload=render_payload(RenderKind.EVENT, event_id=event_id),
                    deployment_id=dep.id,
                    at=now,
                )
            )
        service = self.d.catalog.get(dep.service_key)
        cause = RollbackCause.of(event.detail.get("cause"))
        automatic = event.kind is EventKind.ROLLBACK_STARTED and cause is not None and cause.is_automatic
        if automatic and service is not None and service.incident_channel:
            rows.append(
                outbox_row(
                    key=incident_key(dep.id, event.key),
                    channel_id=service.incident_channel,
                    payload=render_payload(RenderKind.INCIDENT, event_id=event_id),
                    deployment_id=dep.id,
                    at=now,
                )
            )
        if event.kind is EventKind.FINISHED:
            rows += self._closings(session, dep, event, event_id, now)
        return rows

    def _closings(
        self, session: Session, dep: Deployment, event: Event, event_id: int, now: datetime
    ) -> list[dict[str, object]]:
        """A closing line for each channel where a rollback of `dep` was asked for or announced."""
        service = self.d.catalog.get(dep.service_key)
        asked = session.scalars(
            select(Decision.channel_id)
            .where(Decision.deployment_id == dep.id, Decision.kind == DecisionKind.ROLLBACK)
            .order_by(Decision.id)
        )
        details = session.scalars(
            select(DeploymentEvent.detail).where(
                DeploymentEvent.deployment_id == dep.id, DeploymentEvent.kind == EventKind.ROLLBACK_STARTED
            )
        )
        causes = [(d or {}).get("cause") for d in details]
        channels = closing_channels(dep.channel_id, asked, causes, service.incident_channel if service else None)
        return [
            outbox_row(
                key=incident_key(dep.id, f"{event.key}:{channel}"),
                channel_id=channel,
                payload=render_payload(RenderKind.INCIDENT, event_id=event_id),
                deployment_id=dep.id,
                at=now,
            )
            for channel in channels
        ]

    def _reminders(self, session: Session, dep: Deployment, now: datetime) -> list[Event]:
        service = self.d.catalog.get(dep.service_key)
        if dep.status is not DeploymentStatus.AWAITING_APPROVAL or service is None:
            return []
        reminders: list[Event] = []
        # The pause lasts what we asked ECS for: its length, measured on our clock from when we saw it begin.
        stored = dep.tracked.get("approval_timeout")
        length = timedelta(minutes=pause_minutes(timedelta(seconds=stored))) if isinstance(stored, int) else None
        for hook in awaiting_hooks(dep.tracked):
            since = session.scalar(
                select(DeploymentEvent.at).where(
                    DeploymentEvent.deployment_id == dep.id,
                    DeploymentEvent.key == f"hook:{hook.hook_id}:AWAITING_ACTION",
                )
            )
            reminders += [
                Event(EventKind.REMINDER, r.key, stage=hook.stage, detail=r.detail)
                for r in due_reminders(hook, since or now, service.reminder_interval, now, length)
            ]
        return reminders


def _guarded(report: PassReport, dep_id: int, what: str, step: Callable[..., object], *args: object) -> None:
    """Run one deployment's step of the pass; an error is logged and counted, and the pass goes on."""
    try:
        step(*args)
    except Exception as exc:
        log.exception("reconcile step failed; the pass goes on", deployment_id=dep_id, step=what)
        report.errors.append(f"{what} #{dep_id}: {type(exc).__name__}")


def _narrate(found: Sequence[tuple[Deployment, Event]], touched: Sequence[Deployment]) -> None:
    """After the commit: a line per stored event, and a line and the outcome metric per deployment that ended."""
    for dep, event in found:
        with bound(deployment_id=dep.id, service=dep.service_key, ecs_arn=dep.ecs_deployment_arn):
            log.info("deployment event", event_kind=event.kind, stage=event.stage, status=dep.status)
    for dep in touched:
        if not dep.status.is_active:  # every claimed deployment was active: this one just ended
            metrics.count_outcome(dep.status, dep.strategy)
            where = {"deployment_id": dep.id, "service": dep.service_key, "ecs_arn": dep.ecs_deployment_arn}
            log.info("deployment finished", **where, status=dep.status, strategy=dep.strategy)


def _applied_decisions(session: Session, ids: Sequence[int]) -> dict[int, list[Decision]]:
    by_deployment: dict[int, list[Decision]] = defaultdict(list)
    stmt = select(Decision).where(Decision.deployment_id.in_(ids), Decision.applied_at.is_not(None))
    for decision in session.scalars(stmt):
        by_deployment[decision.deployment_id].append(decision)
    return by_deployment


def _missing(dep: Deployment, now: datetime) -> tuple[list[Event], bool]:
    """One more pass ECS answered this deployment as missing; LOST after a few in a row (bot/domain/machine/lost.py)."""
    passes = int(dep.tracked.get(MISSING_PASSES) or 0) + 1
    state, events = missing_pass(Tracked.from_json(dep.tracked), passes, now)
    dep.tracked = {**dep.tracked, **state.to_json(), MISSING_PASSES: passes}
    log.warning("ECS does not find the service deployment", missing_passes=passes, lost=bool(events))
    if not events:
        return [], False
    dep.status = state.status
    dep.status_reason = LOST_REASON
    dep.finished_at = now  # the bot's verdict, on the bot's clock: ECS gave no end
    return events, True


def _apply_state(dep: Deployment, state: Tracked, snapshot: Snapshot) -> None:
    dep.tracked = {**dep.tracked, **state.to_json()}
    dep.status = state.status
    dep.ecs_status = state.ecs_status
    dep.lifecycle_stage = state.lifecycle_stage
    dep.production_weight = state.production_weight
    dep.test_weight = state.test_weight
    dep.status_reason = snapshot.status_reason
    # What ECS did is timed by ECS's clock, never ours (docs/ARCHITECTURE.md, "Clocks").
    dep.started_at = ecs_started(snapshot) or dep.started_at
    if not state.status.is_active and dep.finished_at is None:
        dep.finished_at = ecs_ended(snapshot)
