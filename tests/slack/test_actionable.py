"""Actionable first, never stale, through the real sender and the Slack stand-in (issue 12, item 3)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.db.store import outbox_row, queue_many
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import ActorSource, DecisionKind, DeploymentStatus, EventKind, OutboxState, RenderKind
from bot.domain.outbox import event_key, render_payload
from models import Decision, Deployment
from sandbox.slack.server import SlackSandboxHandle
from tests.slack.sender_support import (
    CH,
    SECOND,
    T0,
    add_deployment,
    add_event,
    drain_until_quiet,
    posted_keys,
    root,
    row_of,
    sender,
)


def narrate(sessions: sessionmaker[Session], dep: int, kind: EventKind, stage: str, **detail: Any) -> str:
    """An event and its thread reply, queued as the reconciler queues them (queue_many ranks it)."""
    event_id = add_event(sessions, dep, stage, kind, **detail)
    key = event_key(dep, event_id)
    with sessions.begin() as s:
        payload = render_payload(RenderKind.EVENT, event_id=event_id)
        row = outbox_row(key=key, channel_id=CH, payload=payload, at=T0, deployment_id=dep, in_thread=True)
        queue_many(s, [row])
    return key


def waiting(sessions: sessionmaker[Session], dep: int, hook: str = "h1") -> None:
    """The deployment now waits for a person at `hook`."""
    with sessions.begin() as s:
        row = s.get_one(Deployment, dep)
        row.status = DeploymentStatus.AWAITING_APPROVAL
        row.tracked = {"hooks": {hook: "AWAITING_ACTION"}, "hook_info": {hook: {"stage": "PRODUCTION_TRAFFIC_SHIFT"}}}


def test_an_approval_request_goes_before_routine_replies_of_other_threads_and_each_thread_keeps_its_order(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    busy, paused = add_deployment(sessions, "catalog"), add_deployment(sessions, "ui")
    root(sessions, busy)
    root(sessions, paused)
    n = sender(sessions, slack, catalog)
    now = drain_until_quiet(n, T0)
    chatter = [narrate(sessions, busy, EventKind.STARTED, f"S{i}") for i in range(3)]
    started = narrate(sessions, paused, EventKind.STARTED, "SCALE_UP")
    waiting(sessions, paused)
    ask = narrate(sessions, paused, EventKind.HOOK_AWAITING, "PRODUCTION_TRAFFIC_SHIFT", hook_id="h1")
    drain_until_quiet(n, now)
    replies = posted_keys(slack)[2:]
    # The paused thread jumps the channel's queue, its own reply first; the busy thread keeps its order.
    assert replies == [started, ask, *chatter]


@pytest.mark.parametrize(
    ("overtaken_by", "posted"),
    [
        ("nothing", True),
        ("approved", False),
        ("ended", False),
        ("released", False),
    ],
)
def test_an_approval_request_overtaken_while_it_waited_is_dropped_not_posted_late(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog, overtaken_by: str, posted: bool
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    n = sender(sessions, slack, catalog)
    now = drain_until_quiet(n, T0)
    waiting(sessions, dep)
    ask = narrate(sessions, dep, EventKind.HOOK_AWAITING, "PRODUCTION_TRAFFIC_SHIFT", hook_id="h1")
    with sessions.begin() as s:
        row = s.get_one(Deployment, dep)
        if overtaken_by == "approved":
            s.add(
                Decision(
                    deployment_id=dep,
                    hook_id="h1",
                    kind=DecisionKind.APPROVE,
                    user_id="U0BOB",
                    source=ActorSource.BUTTON,
                    decided_at=T0 + SECOND,
                )
            )
        elif overtaken_by == "ended":
            row.status, row.finished_at = DeploymentStatus.ROLLED_BACK, T0 + SECOND
        elif overtaken_by == "released":
            row.status, row.tracked = DeploymentStatus.IN_PROGRESS, {"hooks": {"h1": "SUCCEEDED"}}
    drain_until_quiet(n, now)
    assert (ask in posted_keys(slack)) is posted
    stored = row_of(sessions, ask)
    assert stored.state is OutboxState.SENT
    assert (stored.last_error or "").startswith("overtaken") is not posted
