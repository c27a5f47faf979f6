"""Outbox rows to Slack messages: maps a row's `payload["render"]` onto the pure builders in `bot.slack.blocks`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.store import event_view, view_of, views_by_id
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import EventKind, RenderKind
from bot.domain.outbox import overtaken
from bot.domain.readmodels import DeploymentView
from bot.slack import blocks
from bot.slack.blocks import Message
from models import Deployment, DeploymentEvent, Outbox

# (channel, message ts) -> a permalink, or None when it cannot be had; the sender asks Slack for it.
Permalink = Callable[[str, str], str | None]


class Overtaken(Exception):
    """The reply was overtaken while it waited (an approval request for a pause already decided): drop it."""


class RenderError(Exception):
    """The row cannot become a message (unknown kind, missing deployment or event): retrying will not help."""


def render(
    session: Session, row: Outbox, catalog: Catalog, now: datetime, *, permalink: Permalink | None = None
) -> Message | None:
    """The message an outbox row stands for, from the database's current state; None if nothing is to be said."""
    payload: Mapping[str, Any] = row.payload or {}
    kind = payload.get("render")
    if kind == RenderKind.MESSAGE:
        return ready_made(payload)
    dep = session.get(Deployment, row.deployment_id) if row.deployment_id is not None else None
    if dep is None:
        raise RenderError(f"{row.idempotency_key}: render {kind!r} needs a deployment that exists")
    service = catalog.get(dep.service_key)
    if kind == RenderKind.ROOT:
        return blocks.root_message(view_of(session, dep), service, now)
    if kind not in (RenderKind.EVENT, RenderKind.INCIDENT):
        raise RenderError(f"{row.idempotency_key}: unknown render kind {kind!r}")
    event = session.get(DeploymentEvent, payload.get("event_id"))
    if event is None or event.deployment_id != dep.id:
        raise RenderError(f"{row.idempotency_key}: event {payload.get('event_id')!r} not found for deployment {dep.id}")
    # Event replies look back over the timeline (e.g. what a timed-out hook was set to do).
    view = view_of(session, dep, with_events=True)
    if kind == RenderKind.EVENT:
        reason = overtaken(event_view(event), view)
        if reason is not None:
            raise Overtaken(reason)
        return blocks.event_message(view, event_view(event), service, now)
    link = permalink(dep.channel_id, dep.root_ts) if permalink is not None and dep.root_ts else None
    if event.kind is EventKind.FINISHED:  # the closing line after a rollback asked for or announced there
        return blocks.incident_closing(view, event_view(event), service, link)
    return blocks.incident_announcement(view, event_view(event), service, link)


def render_many(
    session: Session, rows: Sequence[Outbox], catalog: Catalog, now: datetime, *, links: Mapping[int, str | None]
) -> dict[int, Message | Exception | None]:
    """Every row's message (or why it cannot be made), by row id, from one read of the deployments they need."""
    threaded = {
        r.deployment_id for r in rows if (r.payload or {}).get("render") in (RenderKind.EVENT, RenderKind.INCIDENT)
    }
    ids = sorted({r.deployment_id for r in rows if r.deployment_id is not None})
    views = views_by_id(session, ids, with_events=sorted(d for d in threaded if d is not None))
    event_ids = [e for e in ((r.payload or {}).get("event_id") for r in rows) if isinstance(e, int)]
    events = {e.id: e for e in session.scalars(select(DeploymentEvent).where(DeploymentEvent.id.in_(event_ids)))}
    out: dict[int, Message | Exception | None] = {}
    for row in rows:
        try:
            out[row.id] = _render_view(row, views, events, catalog, now, links.get(row.id))
        except Exception as exc:  # one row's problem is that row's: the rest of the pass goes on
            out[row.id] = exc
    return out


def _render_view(
    row: Outbox,
    views: Mapping[int, DeploymentView],
    events: Mapping[int, DeploymentEvent],
    catalog: Catalog,
    now: datetime,
    link: str | None,
) -> Message | None:
    payload: Mapping[str, Any] = row.payload or {}
    kind = payload.get("render")
    if kind == RenderKind.MESSAGE:
        return ready_made(payload)
    view = views.get(row.deployment_id) if row.deployment_id is not None else None
    if view is None:
        raise RenderError(f"{row.idempotency_key}: render {kind!r} needs a deployment that exists")
    service = catalog.get(view.service_key)
    if kind == RenderKind.ROOT:
        return blocks.root_message(view, service, now)
    if kind not in (RenderKind.EVENT, RenderKind.INCIDENT):
        raise RenderError(f"{row.idempotency_key}: unknown render kind {kind!r}")
    event = events.get(payload.get("event_id") or 0)
    if event is None or event.deployment_id != view.id:
        raise RenderError(
            f"{row.idempotency_key}: event {payload.get('event_id')!r} not found for deployment {view.id}"
        )
    if kind == RenderKind.EVENT:
        reason = overtaken(event_view(event), view)
        if reason is not None:
            raise Overtaken(reason)
        return blocks.event_message(view, event_view(event), service, now)
    if event.kind is EventKind.FINISHED:  # the closing line after a rollback asked for or announced there
        return blocks.incident_closing(view, event_view(event), service, link)
    return blocks.incident_announcement(view, event_view(event), service, link)


def ready_made(payload: Mapping[str, Any]) -> Message:
    """A message queued with its text (and optionally blocks) already written."""
    text, extra = payload.get("text"), payload.get("blocks") or []
    if not isinstance(text, str) or not text or not isinstance(extra, list):
        raise RenderError("a ready-made message needs `text` and, if any, a list of `blocks`")
    return Message(text, list(extra))
