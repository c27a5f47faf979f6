"""Writing one described batch of a reconcile pass: advance the machine, store states, events and messages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session

from bot.db.sessions import transaction
from bot.db.store import add_events, event_reply_row, outbox_row, queue_many, root_update_row
from bot.db.versioned import write_versioned
from bot.domain.enums import (
    STOP_HOOK_ID,
    DecisionKind,
    EventKind,
    RenderKind,
    RollbackCause,
    Telling,
)
from bot.domain.machine.advance import advance
from bot.domain.machine.lost import LOST_REASON, missing_pass
from bot.domain.machine.state import Event, Tracked
from bot.domain.outbox import incident_key, render_payload
from bot.domain.pacing import next_describe, pace_of
from bot.domain.snapshot import ecs_ended, ecs_started
from bot.domain.telling import closing_channels, telling
from bot.ecs.gateway import Snapshot
from bot.engine import metrics
from bot.engine.deployments import Deployments
from bot.engine.reminding import Reminders, Waiting
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
    row: Any = field(default=None, compare=False)  # the `LIGHT` columns as claimed (None: not read)


class _Applied(NamedTuple):
    """An applied decision, as the machine reads it."""

    id: int
    hook_id: str
    kind: DecisionKind
    user_id: str


# What the machine reads and writes of a row; with `LIGHT`, what a pass reads before it knows whether to advance.
_STATE = (
    Deployment.status,
    Deployment.ecs_status,
    Deployment.lifecycle_stage,
    Deployment.production_weight,
    Deployment.test_weight,
    Deployment.status_reason,
    Deployment.started_at,
    Deployment.finished_at,
    Deployment.tracked,
)
LIGHT = (Deployment.lease_owner, Deployment.version, Deployment.service_key, *_STATE)


@dataclass(frozen=True)
class _Fixpoint:
    """A deployment's row, ECS snapshot and applied decisions when a pass advanced it and nothing changed.

    The machine is a function of these (and of `now` only for hooks ECS stopped reporting, which it settles in
    that first pass): seeing them again, it would change nothing again.
    """

    row: tuple[Any, ...]
    snapshot: Snapshot | None
    decisions: tuple[int, int]  # applied decisions: how many, the last id (they are only ever added)


class BatchWriter:
    """The write half of a reconcile pass (the Reconciler is one): a batch's rows, events and messages."""

    d: Deployments
    owner: str
    _fixed: dict[int, _Fixpoint]  # deployment id → its last pass that changed nothing (this process's memory)
    _applied: dict[int, tuple[int, int]]  # applied decisions of this pass's claims, as `_Fixpoint.decisions`
    _quiet: list[dict[str, Any]]  # leases of this pass to release at its end: deployments left as they were
    reminders: Reminders

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
        A deployment whose row, snapshot and applied decisions are those of a pass that changed nothing is not
        advanced again: only its lease is released, with the batch's others, in one statement.
        """
        now = self.d.clock()
        same = [c for c in claims if self._unchanged(c, snapshots.get(c.arn or ""))]
        told = self.reminders.due(self._read, [Waiting.of(c.row) for c in same], now) if same else {}
        quiet = {c.id for c in same if not told.get(c.id)}
        self._quiet += [_due(c.row, now, stretch) for c in same if c.id in quiet]
        written = [c for c in claims if c.id not in quiet]
        if not written:
            return 0
        with transaction(self.d.sessions) as session:
            decisions = _applied_decisions(session, [c.id for c in written])
            found, touched, moved, settled = self._write(session, written, snapshots, missing, decisions, stretch, now)
            # One version-checked executemany, not one UPDATE per row: a row another writer changed since the
            # read raises StaleDataError, and the pass writes the batch again one by one (Reconciler._batch).
            write_versioned(session, moved)
            release_quiet(session, self.owner, [_due(dep, now, stretch) for dep in settled])
            stored = self._store(session, found, touched, now)
        _narrate(found, touched)
        return stored

    def _unchanged(self, claim: _Claim, snapshot: Snapshot | None) -> bool:
        seen = self._fixed.get(claim.id)
        if seen is None or claim.row is None:
            return False
        return seen == _Fixpoint(_row_key(claim.row), snapshot, self._applied.get(claim.id, (0, 0)))

    def _read(self, stmt: Any) -> list[Any]:
        """Run a read in a session of its own (outside a batch's transaction)."""
        with self.d.sessions() as session:
            return list(session.execute(stmt))

    def _write(
        self,
        session: Session,
        claims: Sequence[_Claim],
        snapshots: dict[str, Snapshot],
        missing: frozenset[str],
        decisions: dict[int, list[_Applied]],
        stretch: timedelta,
        now: datetime,
    ) -> tuple[list[tuple[Deployment, Event]], list[Deployment], list[Deployment], list[Deployment]]:
        """Advance the batch's deployments on the ORM: (events, touched, moved: rows to write, settled: rows left
        as they were)."""
        ids = [c.id for c in claims]
        deps = {d.id: d for d in session.scalars(select(Deployment).where(Deployment.id.in_(ids)))} if ids else {}
        found: list[tuple[Deployment, Event]] = []
        touched: list[Deployment] = []
        moved: list[Deployment] = []
        settled: list[Deployment] = []
        advanced: list[tuple[Deployment, Snapshot | None, list[Event], bool, tuple[Any, ...]]] = []
        with session.no_autoflush:  # the rows are written together by write_batch (write_versioned)
            for claim in claims:
                dep, snapshot = deps.get(claim.id), snapshots.get(claim.arn or "")
                if dep is None or dep.lease_owner != self.owner:
                    continue
                before = _row_key(dep)
                with bound(deployment_id=dep.id, service=dep.service_key, ecs_arn=claim.arn):
                    if snapshot is not None:
                        events, changed = self._advance(dep, snapshot, now, decisions.get(dep.id, []))
                    elif claim.arn in missing:
                        events, changed = _missing(dep, now)
                    else:
                        continue
                advanced.append((dep, snapshot, events, changed, before))
            told = self.reminders.due(session.execute, [Waiting.of(a[0]) for a in advanced], now)
            for dep, snapshot, events, changed, before in advanced:
                reminders = told.get(dep.id, [])
                found += [(dep, e) for e in events + reminders]
                if events or changed or reminders:
                    dep.updated_at = now
                    touched.append(dep)
                if snapshot is not None and not events and not reminders and before == _row_key(dep):
                    # Nothing to write: remember what it was, so the next pass that sees the same skips the machine.
                    self._fixed[dep.id] = _Fixpoint(before, snapshot, _fingerprint(decisions.get(dep.id, [])))
                    settled.append(dep)
                    continue
                self._fixed.pop(dep.id, None)
                pace = pace_of(dep.status, dep.lifecycle_stage, baking=bool(dep.tracked.get("bake_until")))
                due = now if snapshot is None else next_describe(pace, now, stretch)
                dep.lease_owner, dep.lease_until = None, due
                moved.append(dep)
        return found, touched, moved, settled

    def _advance(
        self, dep: Deployment, snapshot: Snapshot, now: datetime, decisions: Sequence[_Applied]
    ) -> tuple[list[Event], bool]:
        """Apply the machine to one deployment; return its new events and whether what the root shows changed."""
        by_hook = {d.hook_id: (d.kind, d.user_id) for d in decisions if d.hook_id != STOP_HOOK_ID}
        stopped_by = next(
            (d.user_id for d in decisions if d.hook_id == STOP_HOOK_ID and d.kind is DecisionKind.ROLLBACK), None
        )
        tracked = Tracked.from_json(dep.tracked)
        if MISSING_PASSES in dep.tracked:  # found again: count afresh
            dep.tracked = {k: v for k, v in dep.tracked.items() if k != MISSING_PASSES}
        state, events = advance(tracked, snapshot, now, by_hook, stopped_by=stopped_by)
        before = (dep.status, dep.lifecycle_stage, dep.production_weight, dep.test_weight)
        _apply_state(dep, state, snapshot)
        after = (dep.status, dep.lifecycle_stage, dep.production_weight, dep.test_weight)
        return events, before != after

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
        rows += [root_update_row(d, now) for d in touched]
        queue_many(session, rows)
        return len(stored)

    def _messages(
        self, session: Session, dep: Deployment, event: Event, event_id: int, now: datetime
    ) -> list[dict[str, object]]:
        rows = []
        if telling(event.kind, event.detail) is Telling.REPLY:  # the rest only changes the root message
            rows.append(event_reply_row(dep, event_id, now))
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


def _applied_decisions(session: Session, ids: Sequence[int]) -> dict[int, list[_Applied]]:
    by_deployment: dict[int, list[_Applied]] = defaultdict(list)
    stmt = (
        select(Decision.deployment_id, Decision.id, Decision.hook_id, Decision.kind, Decision.user_id)
        .where(Decision.deployment_id.in_(ids), Decision.applied_at.is_not(None))
        .order_by(Decision.id)
    )
    for dep_id, decision_id, hook_id, kind, user_id in session.execute(stmt):
        by_deployment[dep_id].append(_Applied(decision_id, hook_id, kind, user_id))
    return by_deployment


def applied_fingerprints(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Per deployment of `ids` with applied decisions: how many, and the last one's id (see `_Fixpoint`)."""
    stmt = (
        select(Decision.deployment_id, func.count(), func.max(Decision.id))
        .where(Decision.deployment_id.in_(ids), Decision.applied_at.is_not(None))
        .group_by(Decision.deployment_id)
    )
    return {dep_id: (int(n), int(last)) for dep_id, n, last in session.execute(stmt)}


def _fingerprint(decisions: Sequence[_Applied]) -> tuple[int, int]:
    return (len(decisions), max(d.id for d in decisions)) if decisions else (0, 0)


def _row_key(row: Any) -> tuple[Any, ...]:
    """What the machine reads and writes of a deployment's row (an ORM object or a row of `LIGHT`)."""
    return tuple(getattr(row, c.key) for c in _STATE)


def _due(row: Any, now: datetime, stretch: timedelta) -> dict[str, Any]:
    """Parameters of `release_quiet` for a deployment left as it was: free from now until it is next due."""
    pace = pace_of(row.status, row.lifecycle_stage, baking=bool(row.tracked.get("bake_until")))
    return {"b_id": row.id, "b_version": row.version, "b_due": next_describe(pace, now, stretch)}


def release_quiet(session: Session, owner: str, params: Sequence[dict[str, Any]]) -> None:
    """Release leases of deployments left as they were, each until it is next due, in one executemany.

    Without a version bump, and only at the version read: a row another writer changed meanwhile stays leased
    here and is freed, due at once, at the end of the pass.
    """
    if not params:
        return
    table = cast(Table, Deployment.__table__)
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"), table.c.lease_owner == owner)
        .values(lease_owner=None, lease_until=bindparam("b_due", type_=table.c.lease_until.type))
        .values(updated_at=table.c.updated_at)  # a lease is not a change of the deployment
    )
    session.connection().execute(stmt, params)


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
