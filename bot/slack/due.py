"""Which outbox rows a sender may claim now, and in which order (the claim's query; the sender does the rest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, cast, exists, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from bot.db.sessions import is_postgres
from bot.domain.enums import OutboxKind, OutboxState
from bot.domain.outbox import ROOT_KEY_PREFIX, ROOT_KEY_SUFFIX, post_pace_key
from models import Deployment, Outbox, SlackPace

PENDING, SENDING, FAILED_STATE = OutboxState.PENDING, OutboxState.SENDING, OutboxState.FAILED


def due_query(session: Session, now: datetime, dead: set[str], batch: int) -> Any:
    """Due rows whose turn it is: roots before their thread, replies in queue order, updates after the root."""
    o, earlier, flying = Outbox, aliased(Outbox), aliased(Outbox)
    due: ColumnElement[bool] = o.not_before <= now
    leased: ColumnElement[bool] = flying.not_before > now
    if dead:  # a dead sender's lease ends with it (the row is in doubt: looked up before it goes again)
        due = or_(due, and_(o.state == SENDING, o.lease_owner.in_(sorted(dead))))
        leased = and_(leased, or_(flying.lease_owner.is_(None), flying.lease_owner.not_in(sorted(dead))))
    root_known = exists().where(Deployment.id == o.deployment_id, Deployment.root_ts.is_not(None))
    root_key = literal(ROOT_KEY_PREFIX) + cast(o.deployment_id, String) + literal(ROOT_KEY_SUFFIX)
    root_failed = exists().where(earlier.idempotency_key == root_key, earlier.state == FAILED_STATE)
    reply_before = exists().where(
        earlier.deployment_id == o.deployment_id,
        earlier.in_thread.is_(True),
        earlier.kind == OutboxKind.POST,
        earlier.id < o.id,
        earlier.state.in_((PENDING, SENDING)),
    )
    update_flying = exists().where(
        flying.deployment_id == o.deployment_id,
        flying.kind == OutboxKind.UPDATE_ROOT,
        flying.id != o.id,
        flying.state == SENDING,
        leased,
    )
    threaded = and_(o.in_thread.is_(True), o.thread_ts.is_(None), o.deployment_id.is_not(None))
    stmt = (
        select(o)
        .where(o.state.in_((PENDING, SENDING)), due)
        .where(or_(~threaded, root_known, root_failed))
        .where(or_(o.in_thread.is_(False), o.kind != OutboxKind.POST, ~reply_before))
        .where(or_(o.kind != OutboxKind.UPDATE_ROOT, and_(or_(root_known, root_failed), ~update_flying)))
        # A post whose channel's turn is taken (by this replica or another) cannot go now: leaving it out gives the
        # batch to channels that are free, or a backlog in a few busy channels would take every pass's batch.
        .where(or_(o.kind != OutboxKind.POST, ~turn_taken(o, now)))
        # What a person must act on first; a thread keeps its order (a reply is due only after the one before it),
        # so a thread goes as soon as its most urgent waiting reply: its head carries the thread's rank.
        .order_by(rank(o).desc(), o.id)
        .limit(batch)
    )
    # Replicas share the work: each skips the rows another is claiming right now.
    return stmt.with_for_update(skip_locked=True, of=o) if is_postgres(session) else stmt


def turn_taken(o: type[Outbox], now: datetime) -> ColumnElement[bool]:
    """The row's channel has a post's turn running (slack_pace); a reply's channel is its root message's."""
    follows_root = or_(o.in_thread.is_(True), o.kind == OutboxKind.UPDATE_ROOT)
    # Correlated to the outer row explicitly: nested two deep, auto-correlation would not reach it.
    root_channel = select(Deployment.channel_id).where(Deployment.id == o.deployment_id).correlate(o).scalar_subquery()
    channel = case((follows_root, func.coalesce(root_channel, o.channel_id)), else_=o.channel_id)
    return exists().where(SlackPace.key == literal(post_pace_key("")) + channel, SlackPace.not_before > now)


def rank(o: type[Outbox]) -> ColumnElement[int]:
    """A row's priority; a thread reply's is its thread's highest among the replies still waiting."""
    later = aliased(Outbox)
    thread = (
        select(func.max(later.priority))
        .where(
            later.deployment_id == o.deployment_id,
            later.in_thread.is_(True),
            later.kind == OutboxKind.POST,
            later.state.in_((PENDING, SENDING)),
        )
        .scalar_subquery()
    )
    threaded = and_(o.in_thread.is_(True), o.kind == OutboxKind.POST)
    return case((threaded, func.coalesce(thread, o.priority)), else_=o.priority)
