"""Helpers of the outbox sender's tests: a sender on the stand-in, rows as the producers queue them, what Slack shows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from bot.domain.enums import DeploymentStatus, EventKind, OutboxKind, Strategy
from bot.slack.clients import web_client
from bot.slack.sender import OutboxSender
from models import Deployment, DeploymentEvent, Outbox
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle
from tests.sandbox.slack.conftest import http

CH = ws.DEPLOYS_CHANNEL
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
GRACE = timedelta(seconds=60)
SECOND = timedelta(seconds=1)


def no_jitter() -> float:
    """The back-off's jitter left out: a test that names the retry's second gets exactly bot.domain.backoff's wait."""
    return 0.0


def sender(
    sessions: sessionmaker[Session],
    slack: SlackSandboxHandle,
    catalog: Catalog,
    owner: str = "n1",
    client: WebClient | None = None,
    jitter: Callable[[], float] | None = None,
) -> OutboxSender:
    """A sender on the stand-in (with production's random jitter unless given `no_jitter`)."""
    client = client or web_client(DEFAULT_BOT_TOKEN, slack.api_url)
    if jitter is None:
        return OutboxSender(sessions, client, catalog, owner=owner, grace=GRACE)
    return OutboxSender(sessions, client, catalog, owner=owner, grace=GRACE, jitter=jitter)


# Factory ---------------------------------------------------------------------------------------------------------
def add_deployment(sessions: sessionmaker[Session], service_key: str = "catalog", channel: str = CH) -> int:
    """An in-progress canary deployment."""
    with sessions.begin() as s:
        dep = Deployment(
            service_key=service_key,
            cluster="unicorn-watch",
            service=service_key,
            region="us-east-1",
            strategy=Strategy.CANARY,
            canary_percent=10.0,
            status=DeploymentStatus.IN_PROGRESS,
            requested_by=ws.ALICE,
            channel_id=channel,
            created_at=T0,
            started_at=T0,
        )
        s.add(dep)
        s.flush()
        return dep.id


def add_event(
    sessions: sessionmaker[Session], dep_id: int, stage: str, kind: EventKind = EventKind.STARTED, **detail: Any
) -> int:
    """A timeline entry of the deployment."""
    with sessions.begin() as s:
        service_key = s.get_one(Deployment, dep_id).service_key
        event = DeploymentEvent(
            deployment_id=dep_id,
            service_key=service_key,
            key=f"{kind}:{stage}",
            kind=kind,
            stage=stage,
            detail={"stage": stage, **detail},
            at=T0,
        )
        s.add(event)
        s.flush()
        return event.id


def add_row(
    sessions: sessionmaker[Session],
    key: str,
    dep_id: int | None = None,
    *,
    payload: dict[str, Any],
    kind: OutboxKind = OutboxKind.POST,
    channel: str = CH,
    in_thread: bool = False,
    at: datetime = T0,
    **fields: Any,
) -> int:
    """An outbox row, as the producers queue them."""
    with sessions.begin() as s:
        row = Outbox(
            idempotency_key=key,
            deployment_id=dep_id,
            kind=kind,
            channel_id=channel,
            in_thread=in_thread,
            payload=payload,
            not_before=at,
            created_at=at,
            **fields,
        )
        s.add(row)
        s.flush()
        return row.id


def root(sessions: sessionmaker[Session], dep_id: int) -> int:
    """The deployment's root post, in the deployment's channel."""
    channel = dep_of(sessions, dep_id).channel_id
    return add_row(sessions, f"dep:{dep_id}:root", dep_id, payload={"render": "root"}, channel=channel)


def reply(sessions: sessionmaker[Session], dep_id: int, stage: str) -> int:
    """A thread reply narrating a new event."""
    event_id = add_event(sessions, dep_id, stage)
    return add_row(
        sessions,
        f"dep:{dep_id}:event:{event_id}",
        dep_id,
        in_thread=True,
        payload={"render": "event", "event_id": event_id},
    )


def row_of(sessions: sessionmaker[Session], key: str) -> Outbox:
    """An outbox row by key."""
    with sessions() as s:
        return s.scalars(select(Outbox).where(Outbox.idempotency_key == key)).one()


def dep_of(sessions: sessionmaker[Session], dep_id: int) -> Deployment:
    """A deployment row."""
    with sessions() as s:
        return s.get_one(Deployment, dep_id)


def calls(slack: SlackSandboxHandle, method: str) -> list[dict[str, Any]]:
    """The stand-in's log of `method` calls."""
    return list(http("GET", f"{slack.url}/_sandbox/calls?method={method}")[1]["calls"])


def posted_keys(slack: SlackSandboxHandle) -> list[str]:
    """The outbox key of every accepted chat.postMessage, in call order."""
    return [
        c["params"]["metadata"]["event_payload"]["key"]
        for c in calls(slack, "chat.postMessage")
        if c["ok"] and "metadata" in c["params"]
    ]


def messages(slack: SlackSandboxHandle, channel: str = CH) -> list[dict[str, Any]]:
    """What the channel shows (roots and replies, oldest first)."""
    return list(http("GET", f"{slack.url}/_sandbox/messages?channel={channel}")[1]["messages"])


def drain_until_quiet(n: OutboxSender, start_at: datetime, steps: int = 30) -> datetime:
    """Drain once a second (of the test clock) until a pass sends nothing; return the clock."""
    now = start_at
    for _ in range(steps):
        now += SECOND
        if n.drain_once(now=now) == 0:
            return now
    raise AssertionError("the outbox never went quiet")
