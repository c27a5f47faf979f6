"""A whole pass rendered in one read says exactly what rendering each row alone says (the notifier's cost, P6)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from bot.domain.enums import EventKind, OutboxKind
from bot.slack.render import RenderError, render, render_many
from models import Outbox
from tests.slack.sender_support import T0, add_deployment, add_event, add_row, reply, root


def test_render_many_matches_rendering_each_row(sessions: sessionmaker[Session], catalog: Catalog) -> None:
    first, second = add_deployment(sessions, "catalog"), add_deployment(sessions, "ui")
    root(sessions, first)
    reply(sessions, first, "SCALE_UP")
    reply(sessions, second, "BAKE_TIME")
    add_row(sessions, f"dep:{second}:root-update:2", second, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    finished = add_event(sessions, second, "DONE", EventKind.FINISHED, outcome="SUCCEEDED")
    add_row(sessions, f"dep:{second}:incident:x", second, payload={"render": "incident", "event_id": finished})
    add_row(sessions, "note:1", payload={"render": "message", "text": "hello"})
    add_row(sessions, "broken:1", first, in_thread=True, payload={"render": "event", "event_id": 999})
    add_row(sessions, "odd:1", first, payload={"render": "nonsense"})
    with sessions() as session:
        rows = list(session.scalars(select(Outbox).order_by(Outbox.id)))
        many = render_many(session, rows, catalog, T0, links={})
        assert sorted(many) == [r.id for r in rows]
        for row in rows:
            try:
                alone: object = render(session, row, catalog, T0, permalink=lambda _c, _t: None)
            except RenderError as exc:
                alone = exc
            together = many[row.id]
            if isinstance(alone, Exception):
                assert type(together) is type(alone) and str(together) == str(alone), row.idempotency_key
            else:
                assert together == alone, row.idempotency_key
