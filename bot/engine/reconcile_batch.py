"""Writing one described batch of a reconcile pass: advance the machine, store states, events and messages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.sessions import transaction
from bot.db.store import add_events, outbox_row, queue_many
from bot.domain.durations import pause_minutes
from bot.domain.enums import (
    STOP_HOOK_ID,
    DecisionKind,
    DeploymentStatus,
    EventKind,
    OutboxKind,
    RenderKind,
    RollbackCause,
    Telling,
)
from bot.domain.machine.advance import advance
from bot.domain.machine.lost import LOST_REASON, missing_pass
from bot.domain.machine.state import Event, Tracked
from bot.domain.outbox import event_key, incident_key, render_payload, root_update_key
from bot.domain.pacing import next_describe, pace_of
from bot.domain.readmodels import awaiting_hooks
from bot.domain.reminders import due_reminders
from bot.domain.snapshot import ecs_ended, ecs_started
from bot.domain.telling import closing_channels, telling
from bot.ecs.gateway import Snapshot
from bot.engine import metrics
from bot.engine.deployments import Deployments
from bot.logs import bound, get_logger
from models import Decision, Deployment, DeploymentEvent

log = get_logger(__name__)
MISSING_PASSES = "missing_passes"  # tracked: consecutive passes ECS answered the deployment in `failures`


@dataclass(frozen=True)
class _Claim:
    id: int
    arn: str | None
    region: str
    role_arn: str | None


class BatchWriter:
    """The write half of a reconcile pass (the Reconciler is one): a batch's rows, events and messages."""

    d: Deployments
    owner: str

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
