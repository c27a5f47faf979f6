"""One pass over active deployments: describe them on ECS, advance the machine, store events and messages."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.db import leases
from bot.db.renewal import renewing
from bot.db.sessions import is_postgres, transaction, written_again
from bot.domain.enums import ACTIVE_STATUSES, LifecycleStage, Pace
from bot.domain.pacing import Budget, TokenBucket, pace_of, quiet_interval
from bot.ecs.gateway import EcsError, EcsUnavailable, chunks
from bot.engine import metrics
from bot.engine.applying import RETRY_AFTER
from bot.engine.decisions import Decisions
from bot.engine.deployments import Deployments
from bot.engine.failsafe import unseen_pauses
from bot.engine.reconcile_batch import LIGHT, BatchWriter, _Claim, applied_fingerprints, release_quiet
from bot.engine.reminding import Reminders
from bot.engine.starts import CLOCK_SKEW, retry_delay
from bot.logs import get_logger
from models import Deployment

log = get_logger(__name__)
NEVER_STARTED_AFTER = timedelta(minutes=10)
# A decision ECS could not take goes again this long after it was decided (tests set it to 0).
DECISION_RETRY_AFTER = RETRY_AFTER


@dataclass
class PassReport:
    """What one pass did (for logs, metrics and tests)."""

    claimed: int = 0
    described: int = 0
    events: int = 0
    delayed: int = 0
    handed_back: int = 0  # claimed, not described: the pass had run for a lease's time (given back due at once)
    errors: list[str] = field(default_factory=list)
    live: int = 0  # active deployments in the database, claimed or not
    stretch: timedelta = timedelta(0)  # how long quiet deployments wait between describes (0: every pass)


class Reconciler(BatchWriter):
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
        self._fixed = {}
        self._applied = {}
        self._quiet = []
        self.reminders = Reminders(self.d.catalog)

    def reconcile_once(self) -> PassReport:
        """Claim, describe in batches of 20, and write each batch in one transaction, renewing the leases meanwhile."""
        started = time.monotonic()
        report = PassReport()
        claims = self._claim(self.d.clock(), report)
        report.claimed = len(claims)
        try:
            # A slow ECS (a describe can take minutes of botocore's retries) must not let another replica take the
            # batch over and repeat the describes in flight: the leases still held are renewed every third of one.
            with renewing(self._renew, [c.id for c in claims], self.lease, "deployment leases"):
                self._pass(claims, report)
        finally:
            # Whatever went wrong, nothing this pass claimed stays leased: the next pass (any replica) takes it.
            self._release_quiet()
            self._release([c.id for c in claims], None)
            self._forget(report.live)
        log.debug("reconcile pass", claimed=report.claimed, live=report.live, stretch=report.stretch.total_seconds())
        metrics.count_pass(report.claimed, report.delayed, len(report.errors), time.monotonic() - started)
        return report

    def _pass(self, claims: list[_Claim], report: PassReport) -> None:
        """Retry old decisions, find unstarted deployments, describe and write the rest; one failure stops nothing.

        Once a lease's time has passed no new step starts: the rest is handed back (due at once) at the end.
        """
        deadline = self._monotonic() + self.lease.total_seconds()
        self._retry_pending_decisions(report)
        known = [c.id for c in claims if c.id in self._fixed]
        with self.d.sessions() as session:  # after the retries, which may apply some
            self._applied = applied_fingerprints(session, known) if known else {}
        groups: dict[tuple[str, str | None], list[_Claim]] = defaultdict(list)
        for claim in claims:
            if claim.arn is not None:
                groups[(claim.region, claim.role_arn)].append(claim)
            elif self._monotonic() < deadline:
                _guarded(report, claim.id, "unstarted deployment", self._unstarted, claim)
            else:
                report.handed_back += 1
        for (region, role), members in groups.items():
            for batch in chunks(members):
                if self._monotonic() >= deadline:
                    report.handed_back += len(batch)
                    continue
                self._batch(region, role, batch, report)
        self._roll_back_unseen([c.id for c in claims], report)

    def _renew(self, ids: Sequence[int]) -> None:
        """Extend the leases this pass still holds of `ids` by a lease from now."""
        with transaction(self.d.sessions) as session:
            held = select(Deployment.id).where(Deployment.id.in_(ids), Deployment.lease_owner == self.owner)
            if is_postgres(session):
                # A row the pass is writing now is locked by that write (which releases it): skipped, never waited
                # for, so the renewal never queues behind its own batch.
                held = held.with_for_update(skip_locked=True)
            session.execute(
                update(Deployment)
                .where(Deployment.id.in_(held), Deployment.lease_owner == self.owner)
                .values(lease_until=self.d.clock() + self.lease, updated_at=Deployment.updated_at)
                .execution_options(synchronize_session=False)
            )

    def _release_quiet(self) -> None:
        """The pass's deployments left as they were: their leases, until each is next due, in one statement."""
        quiet, self._quiet = self._quiet, []
        if quiet:
            with transaction(self.d.sessions) as session:
                release_quiet(session, self.owner, quiet)

    def _forget(self, live: int) -> None:
        """Drop what is remembered of deployments no longer live (ended, or ended by another replica)."""
        if len(self._fixed) > live:
            with self.d.sessions() as session:
                active = set(session.scalars(select(Deployment.id).where(Deployment.status.in_(ACTIVE_STATUSES))))
            self._fixed = {k: v for k, v in self._fixed.items() if k in active}
            self.reminders.forget(active)

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
                select(Deployment.id, Deployment.ecs_deployment_arn, Deployment.region, Deployment.role_arn, *LIGHT)
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
            claims = [_Claim(r.id, r.ecs_deployment_arn, r.region, r.role_arn, r) for r in session.execute(stmt)]
            if claims:
                session.execute(
                    update(Deployment)
                    .where(Deployment.id.in_([c.id for c in claims]))
                    .values(lease_owner=self.owner, lease_until=now + self.lease, updated_at=Deployment.updated_at)
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
                .values(lease_owner=None, lease_until=until, updated_at=Deployment.updated_at)
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
            if not queued and not sent and self._orphaned(session, dep):
                # The process starting it died (the person's /deploy was accepted): resume it as a queued start,
                # which asks ECS first whether an UpdateService it may have sent landed.
                log.warning("the process starting this deployment died; resuming its start", deployment_id=dep.id)
                dep.tracked = {**dep.tracked, "start_queued": True}
                queued = True
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

    def _orphaned(self, session: Session, dep: Deployment) -> bool:
        """True when the process that was starting `dep` is gone."""
        owner = dep.tracked.get("start_owner")
        self._liveness = self._liveness or leases.liveness(self.d.sessions, self.owner)
        return isinstance(owner, str) and bool(self._liveness.dead_claims(session, [owner]))

    def _retry_pending_decisions(self, report: PassReport) -> None:
        """Decisions older than DECISION_RETRY_AFTER that nobody holds, or held by a process that died, and that
        ECS shows not taken are sent again, whether or not this pass claimed their deployment."""
        # A decision still being sent is under its sender's lease (renewed while it sends), whatever its age.
        cutoff = self.d.clock() - DECISION_RETRY_AFTER
        pending = self.decisions.applier.retryable(cutoff, self._liveness)
        for dep_id, hook, dead in pending:
            # Under the decision's lease, and only when ECS shows it did not take it (described first).
            _guarded(report, dep_id, "decision retry", self.decisions.retry, dep_id, hook, self.owner, cutoff, dead)

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
            # deployments one by one, from fresh rows (again while another writer keeps winning the version
            # check), so one bad row costs one deployment one pass, no more.
            log.info("batch written one by one after an error", error=f"{type(exc).__name__}: {exc}")
            for claim in claims:
                one = partial(self.write_batch, [claim], snapshots, report.stretch, missing)
                _guarded(report, claim.id, "deployment", written_again, one)


def _guarded(report: PassReport, dep_id: int, what: str, step: Callable[..., object], *args: object) -> None:
    """Run one deployment's step of the pass; an error is logged and counted, and the pass goes on."""
    try:
        step(*args)
    except Exception as exc:
        log.exception("reconcile step failed; the pass goes on", deployment_id=dep_id, step=what)
        report.errors.append(f"{what} #{dep_id}: {type(exc).__name__}")
