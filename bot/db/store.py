"""Database helpers shared by the use cases, the reconciler and the sender (sessions come from the caller)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from bot.domain.enums import (
    ACTIVE_STATUSES,
    DeploymentStatus,
    EventKind,
    LifecycleStage,
    OutboxKind,
    OutboxState,
    RenderKind,
    Telling,
)
from bot.domain.outbox import event_key, priority, render_payload, root_key, root_update_key
from bot.domain.readmodels import DecisionView, DeploymentView, EventView, LockView, awaiting_hooks, parse_time
from bot.domain.telling import telling
from models import Base, Decision, Deployment, DeploymentEvent, Outbox, ServiceLock


def _insert(session: Session, table: type[Base]) -> PgInsert | SqliteInsert:
    """A Core INSERT into the class's table in the session's dialect, for ON CONFLICT DO NOTHING (both dialects
    spell it the same).

    Core, on the table: executed with a list of rows it is one executemany whose compiled form is cached (SQLAlchemy
    expands it into multi-row VALUES pages itself), where `.values([...])` was compiled afresh for every batch
    with one bind per cell, and an ORM entity would take the slower ORM bulk path.
    """
    target = cast(Table, table.__table__)
    if session.get_bind().dialect.name == "postgresql":
        return pg_insert(target)
    return sqlite_insert(target)


def add_event(
    session: Session,
    *,
    service_key: str,
    kind: EventKind,
    key: str,
    at: datetime,
    deployment_id: int | None = None,
    stage: str | None = None,
    detail: Mapping[str, Any] | None = None,
    actor: str | None = None,
) -> int | None:
    """Store a timeline entry unless one with the same key exists; return its id, or None if it was there."""
    row = {
        "deployment_id": deployment_id,
        "service_key": service_key,
        "kind": kind,
        "key": key,
        "stage": stage,
        "detail": dict(detail or {}),
        "actor": actor,
        "at": at,
    }
    return add_events(session, [row]).get((deployment_id, key))


def add_events(session: Session, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[int | None, str], int]:
    """Store many timeline entries in one executemany, skipping keys already stored; map (deployment, key) → id."""
    if not rows:
        return {}
    session.flush()  # the ORM's pending writes go first, as session.execute's autoflush sent them
    stmt = _insert(session, DeploymentEvent).on_conflict_do_nothing(index_elements=["deployment_id", "key"])
    columns = stmt.table.c
    returned = session.connection().execute(
        stmt.returning(columns.id, columns.deployment_id, columns.key), [dict(r) for r in rows]
    )
    return {(dep_id, key): event_id for event_id, dep_id, key in returned}


def queue_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue many Slack messages in one executemany, once per idempotency key, each with its priority."""
    if rows:
        kinds = _event_kinds(session, [(r.get("payload") or {}).get("event_id") for r in rows])
        ranked = []
        for r in rows:
            payload = r.get("payload") or {}
            event = kinds.get(payload.get("event_id") or 0)
            rank = priority(payload.get("render"), event[0] if event else None, event[1] if event else None)
            ranked.append({**r, "priority": rank})
        session.flush()  # as in add_events
        stmt = _insert(session, Outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
        session.connection().execute(stmt, ranked)


def _event_kinds(session: Session, ids: Sequence[Any]) -> dict[int, tuple[EventKind, Mapping[str, Any]]]:
    """(kind, detail) of the events messages narrate (they were stored in the same transaction)."""
    wanted = sorted({i for i in ids if isinstance(i, int)})
    if not wanted:
        return {}
    stmt = select(DeploymentEvent.id, DeploymentEvent.kind, DeploymentEvent.detail).where(
        DeploymentEvent.id.in_(wanted)
    )
    return {i: (kind, detail or {}) for i, kind, detail in session.execute(stmt)}


def outbox_row(
    *,
    key: str,
    channel_id: str,
    payload: Mapping[str, Any],
    at: datetime,
    deployment_id: int | None,
    kind: OutboxKind = OutboxKind.POST,
    in_thread: bool = False,
) -> dict[str, Any]:
    """The column values of one outbox row, for `queue_many`."""
    return {
        "idempotency_key": key,
        "kind": kind,
        "channel_id": channel_id,
        "payload": dict(payload),
        "deployment_id": deployment_id,
        "in_thread": in_thread,
        "thread_ts": None,
        "not_before": at,
        "created_at": at,
    }


def queue(
    session: Session,
    *,
    key: str,
    channel_id: str,
    payload: Mapping[str, Any],
    at: datetime,
    kind: OutboxKind = OutboxKind.POST,
    deployment_id: int | None = None,
    in_thread: bool = False,
) -> None:
    """Queue a Slack message once per idempotency key."""
    queue_many(
        session,
        [
            outbox_row(
                key=key,
                channel_id=channel_id,
                payload=payload,
                at=at,
                kind=kind,
                deployment_id=deployment_id,
                in_thread=in_thread,
            )
        ],
    )


def queue_root_post(session: Session, dep: Deployment, at: datetime) -> None:
    """Queue the deployment's root message (the sender renders it from the current state)."""
    queue(
        session,
        key=root_key(dep.id),
        channel_id=dep.channel_id,
        payload=render_payload(RenderKind.ROOT),
        deployment_id=dep.id,
        at=at,
    )


def root_update_row(dep: Deployment, at: datetime) -> dict[str, Any]:
    """The outbox row of an edit of the root message (for `queue_many`)."""
    return outbox_row(
        key=root_update_key(dep.id, dep.version),
        kind=OutboxKind.UPDATE_ROOT,
        channel_id=dep.channel_id,
        payload=render_payload(RenderKind.ROOT),
        deployment_id=dep.id,
        at=at,
    )


def event_reply_row(dep: Deployment, event_id: int, at: datetime) -> dict[str, Any]:
    """The outbox row of the thread reply narrating one event (for `queue_many`)."""
    return outbox_row(
        key=event_key(dep.id, event_id),
        channel_id=dep.channel_id,
        in_thread=True,
        payload=render_payload(RenderKind.EVENT, event_id=event_id),
        deployment_id=dep.id,
        at=at,
    )


def queue_root_update(session: Session, dep: Deployment, at: datetime) -> None:
    """Queue an edit of the root message; the sender coalesces them and renders the newest state."""
    queue_many(session, [root_update_row(dep, at)])


def queue_event_reply(session: Session, dep: Deployment, event_id: int, at: datetime) -> None:
    """Queue the thread reply narrating one event."""
    queue_many(session, [event_reply_row(dep, event_id, at)])


def record(session: Session, dep: Deployment, kind: EventKind, key: str, at: datetime, **fields: Any) -> int | None:
    """Store an event of `dep` and queue its thread reply if the narrative tells it there; None if already stored."""
    event_id = add_event(
        session, service_key=dep.service_key, deployment_id=dep.id, kind=kind, key=key, at=at, **fields
    )
    if event_id is not None and telling(kind, fields.get("detail") or {}) is Telling.REPLY:
        queue_event_reply(session, dep, event_id, at)
    return event_id


def active_deployment(session: Session, service_key: str) -> Deployment | None:
    """The service's active deployment, if any (there is at most one)."""
    stmt = select(Deployment).where(Deployment.service_key == service_key, Deployment.status.in_(ACTIVE_STATUSES))
    return session.scalars(stmt).first()


def latest_deployment(session: Session, service_key: str) -> Deployment | None:
    """The service's most recent deployment."""
    stmt = select(Deployment).where(Deployment.service_key == service_key).order_by(Deployment.id.desc()).limit(1)
    return session.scalars(stmt).first()


def current_lock(session: Session, service_key: str, now: datetime) -> ServiceLock | None:
    """The service's lock if it still holds."""
    lock = session.get(ServiceLock, service_key)
    return lock if lock is not None and (lock.until is None or lock.until > now) else None


def locks_holding(session: Session, service_key: str | None, now: datetime) -> list[ServiceLock]:
    """The locks that hold at `now`, of one service or all, by service."""
    stmt = select(ServiceLock).order_by(ServiceLock.service_key)
    if service_key is not None:
        stmt = stmt.where(ServiceLock.service_key == service_key)
    return [lock for lock in session.scalars(stmt) if lock.until is None or lock.until > now]


def lock_view(row: ServiceLock) -> LockView:
    """A LockView of a lock row."""
    return LockView(row.service_key, row.locked_by, row.reason, row.locked_at, row.until)


def decisions_of(session: Session, deployment_id: int) -> list[Decision]:
    """Every decision taken on a deployment, oldest first."""
    stmt = select(Decision).where(Decision.deployment_id == deployment_id).order_by(Decision.id)
    return list(session.scalars(stmt))


def views_by_id(session: Session, ids: Sequence[int], *, with_events: Sequence[int] = ()) -> dict[int, DeploymentView]:
    """The views of many deployments by id, in three queries (the sender renders a whole pass at once)."""
    if not ids:
        return {}
    deps = session.scalars(select(Deployment).where(Deployment.id.in_(ids)))
    decisions: dict[int, list[Decision]] = {i: [] for i in ids}
    for decision in session.scalars(select(Decision).where(Decision.deployment_id.in_(ids)).order_by(Decision.id)):
        decisions[decision.deployment_id].append(decision)
    events: dict[int, list[DeploymentEvent]] = {i: [] for i in with_events}
    if with_events:
        stmt = select(DeploymentEvent).where(DeploymentEvent.deployment_id.in_(with_events))
        for event in session.scalars(stmt.order_by(DeploymentEvent.id)):
            events[event.deployment_id or 0].append(event)
    return {d.id: deployment_view(d, decisions[d.id], events.get(d.id, ())) for d in deps}


def view_of(session: Session, dep: Deployment, *, with_events: bool = False) -> DeploymentView:
    """The read-only view of a deployment, with its decisions (and events when asked)."""
    events: Sequence[DeploymentEvent] = ()
    if with_events:
        stmt = select(DeploymentEvent).where(DeploymentEvent.deployment_id == dep.id).order_by(DeploymentEvent.id)
        events = list(session.scalars(stmt))
    return deployment_view(dep, decisions_of(session, dep.id), events)


def views_of(session: Session, deps: Sequence[Deployment], *, with_events: bool = False) -> list[DeploymentView]:
    """`view_of` for many deployments with one query for their decisions (and one for their events)."""
    ids = [d.id for d in deps]
    decisions: dict[int, list[Decision]] = {i: [] for i in ids}
    events: dict[int, list[DeploymentEvent]] = {i: [] for i in ids}
    if ids:
        for decision in session.scalars(select(Decision).where(Decision.deployment_id.in_(ids)).order_by(Decision.id)):
            decisions[decision.deployment_id].append(decision)
    if ids and with_events:
        stmt = select(DeploymentEvent).where(DeploymentEvent.deployment_id.in_(ids)).order_by(DeploymentEvent.id)
        for event in session.scalars(stmt):
            events[event.deployment_id or 0].append(event)
    return [deployment_view(d, decisions[d.id], events[d.id]) for d in deps]


# Rows to read models ------------------------------------------------------------------------------------------
def event_view(row: DeploymentEvent) -> EventView:
    """An EventView of an event row."""
    return EventView(row.id, row.kind, row.key, row.stage, dict(row.detail), row.actor, row.at)


def decision_view(row: Decision) -> DecisionView:
    """A DecisionView of a decision row."""
    return DecisionView(row.hook_id, row.kind, row.user_id, row.source, row.decided_at, row.reason)


def deployment_view(
    row: Deployment, decisions: Sequence[Decision] = (), events: Sequence[DeploymentEvent] = ()
) -> DeploymentView:
    """A DeploymentView of a deployment row, with the hooks now awaiting a person."""
    tracked = row.tracked or {}
    return DeploymentView(
        id=row.id,
        service_key=row.service_key,
        cluster=row.cluster,
        service=row.service,
        region=row.region,
        strategy=row.strategy,
        canary_percent=row.canary_percent,
        linear_step_percent=row.linear_step_percent,
        canary_bake_seconds=row.canary_bake_seconds,
        step_bake_seconds=row.step_bake_seconds,
        bake_seconds=row.bake_seconds,
        approval_stages=tuple(row.approval_stages or ()),
        image_from=row.image_from,
        image_to=row.image_to,
        taskdef_from=row.taskdef_from,
        taskdef_to=row.taskdef_to,
        ecs_deployment_arn=row.ecs_deployment_arn,
        status=row.status,
        ecs_status=row.ecs_status,
        status_reason=row.status_reason,
        lifecycle_stage=row.lifecycle_stage,
        production_weight=row.production_weight,
        test_weight=row.test_weight,
        requested_by=row.requested_by,
        channel_id=row.channel_id,
        root_ts=row.root_ts,
        reason=row.reason,
        rollback_of_id=row.rollback_of_id,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        version=row.version,
        stages_seen=tuple(LifecycleStage(s) for s in tracked.get("stages_seen", ())),
        headless=bool(tracked.get("headless")),
        bake_until=parse_time(tracked.get("bake_until")),
        awaiting=awaiting_hooks(tracked) if row.status is DeploymentStatus.AWAITING_APPROVAL else (),
        decisions=tuple(decision_view(d) for d in decisions),
        events=tuple(event_view(e) for e in events),
    )


# The outbox sender's writes, a batch of outcomes at a time ------------------------------------------------------
def sending_attempts(session: Session, ids: Sequence[int]) -> dict[int, int]:
    """attempts of the rows among `ids` still SENDING, locked until the transaction ends (who else may own them)."""
    stmt = select(Outbox.id, Outbox.attempts).where(Outbox.id.in_(ids), Outbox.state == OutboxState.SENDING)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return {row_id: attempts for row_id, attempts in session.execute(stmt)}


_OUTCOME_COLUMNS = ("state", "last_error", "attempts", "lookups", "slack_ts", "sent_at", "not_before")


def store_outcomes(session: Session, outcomes: Sequence[Mapping[str, Any]]) -> None:
    """Set each row's outcome (`id` and any of state, last_error, attempts, lookups, slack_ts, sent_at, not_before).

    One executemany per set of columns: a batch is two or three statements, not one per message.
    """
    table = cast(Table, Outbox.__table__)
    shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for outcome in outcomes:
        shape = tuple(c for c in _OUTCOME_COLUMNS if c in outcome)
        shapes.setdefault(shape, []).append({f"b_{k}": v for k, v in outcome.items()})
    for shape, params in shapes.items():
        values: dict[str, Any] = {c: bindparam(f"b_{c}") for c in shape} | {"lease_owner": None}
        stmt = update(table).where(table.c.id == bindparam("b_id")).values(values)
        session.connection().execute(stmt, params)


def fold_older_root_edits(session: Session, sent: Sequence[Mapping[str, Any]], at: datetime) -> None:
    """Older pending edits of each root just edited are covered by it (`deployment_id`, `id`, `ts` per edit)."""
    if not sent:
        return
    table = cast(Table, Outbox.__table__)
    stmt = (
        update(table)
        .where(
            table.c.deployment_id == bindparam("b_dep"),
            table.c.kind == OutboxKind.UPDATE_ROOT,
            table.c.state == OutboxState.PENDING,
            table.c.id < bindparam("b_id"),
        )
        .values(state=OutboxState.SENT, last_error=bindparam("b_note"), slack_ts=bindparam("b_ts"), sent_at=at)
    )
    params = [
        {"b_dep": e["deployment_id"], "b_id": e["id"], "b_ts": e["ts"], "b_note": f"coalesced into #{e['id']}"}
        for e in sent
    ]
    session.connection().execute(stmt, params)
