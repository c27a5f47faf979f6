"""The outbox drainer over real HTTP against the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.sessions import make_engine, session_factory
from bot.db.store import view_of
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import DeploymentStatus, EventKind, OutboxKind, OutboxState
from bot.slack import blocks
from bot.slack.clients import web_client
from bot.slack.sender import OutboxSender
from models import Deployment, Outbox
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.slack.sender_support import (
    CH,
    GRACE,
    SECOND,
    T0,
    add_deployment,
    add_event,
    add_row,
    calls,
    dep_of,
    drain_until_quiet,
    messages,
    no_jitter,
    posted_keys,
    reply,
    root,
    row_of,
    sender,
)


# Ordering --------------------------------------------------------------------------------------------------------
def test_root_first_then_replies_in_order_under_it(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    early = [reply(sessions, dep, "SCALE_UP"), reply(sessions, dep, "TEST_TRAFFIC_SHIFT")]  # queued before the root
    root(sessions, dep)
    reply(sessions, dep, "PRODUCTION_TRAFFIC_SHIFT")
    n = sender(sessions, slack, catalog)

    assert n.drain_once(now=T0) == 1
    root_row = row_of(sessions, f"dep:{dep}:root")
    assert root_row.state is OutboxState.SENT and root_row.attempts == 1
    assert dep_of(sessions, dep).root_ts == root_row.slack_ts
    with sessions() as s:
        assert [s.get_one(Outbox, i).state for i in early] == [OutboxState.PENDING] * 2  # no thread yet: they wait
    assert n.drain_once(now=T0 + SECOND / 2) == 0  # one chat.postMessage per second per channel

    drain_until_quiet(n, T0)
    shown = messages(slack)
    assert shown[0]["ts"] == root_row.slack_ts
    assert all(m["thread_ts"] == root_row.slack_ts for m in shown[1:])
    assert [m["metadata"]["event_payload"]["key"] for m in shown] == [
        f"dep:{dep}:root",
        f"dep:{dep}:event:1",
        f"dep:{dep}:event:2",
        f"dep:{dep}:event:3",
    ]
    assert "▶" in shown[1]["text"]  # rendered by bot.blocks from the event
    assert len(calls(slack, "chat.postMessage")) == 4
    post = calls(slack, "chat.postMessage")[0]["params"]
    assert post["unfurl_links"] is False and post["text"] and post["blocks"]


def test_a_later_reply_waits_for_an_earlier_one_that_is_rescheduled(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    n = sender(sessions, slack, catalog)
    n.drain_once(now=T0)
    first = reply(sessions, dep, "SCALE_UP")
    reply(sessions, dep, "BAKE_TIME")
    with sessions.begin() as s:
        s.get_one(Outbox, first).not_before = T0 + timedelta(seconds=30)  # e.g. after a 429
    assert n.drain_once(now=T0 + 2 * SECOND) == 0
    assert n.drain_once(now=T0 + 31 * SECOND) == 1
    assert n.drain_once(now=T0 + 32 * SECOND) == 1
    assert posted_keys(slack)[1:] == [f"dep:{dep}:event:1", f"dep:{dep}:event:2"]


# Coalescing ------------------------------------------------------------------------------------------------------
def test_root_updates_are_coalesced_into_one_chat_update_of_the_newest_state(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    n = sender(sessions, slack, catalog)
    n.drain_once(now=T0)
    for version in (1, 2, 3):
        add_row(
            sessions, f"dep:{dep}:root-update:{version}", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"}
        )
    with sessions.begin() as s:
        row = s.get_one(Deployment, dep)
        row.status, row.finished_at = DeploymentStatus.SUCCEEDED, T0 + timedelta(minutes=5)
    now = T0 + 10 * SECOND
    assert n.drain_once(now=now) == 1

    updates = calls(slack, "chat.update")
    assert len(updates) == 1
    with sessions() as s:
        expected = blocks.root_message(view_of(s, s.get_one(Deployment, dep)), catalog.get("catalog"), now)
    sent = updates[0]["params"]
    assert (sent["text"], sent["blocks"]) == (expected.text, expected.blocks)  # both, always
    root_ts = dep_of(sessions, dep).root_ts
    assert messages(slack)[0]["text"] == expected.text
    newest = row_of(sessions, f"dep:{dep}:root-update:3")
    assert (newest.state, newest.slack_ts, newest.last_error) == (OutboxState.SENT, root_ts, None)
    for version in (1, 2):
        older = row_of(sessions, f"dep:{dep}:root-update:{version}")
        assert older.state is OutboxState.SENT and (older.last_error or "").startswith("coalesced")

    add_row(sessions, f"dep:{dep}:root-update:4", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"}, at=now)
    assert n.drain_once(now=now + SECOND / 2) == 0  # at most one edit per second per message
    assert n.drain_once(now=now + SECOND) == 1
    assert len(calls(slack, "chat.update")) == 2


# Rate limits -----------------------------------------------------------------------------------------------------
def test_429_reschedules_by_retry_after_and_sends_once_later(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    # The stand-in's clock stands still until the test moves it: its one-second window passes when the test says,
    # not when a loaded machine gets round to the first drain (it did, 7 runs in 20, and the 429 never came).
    http("POST", f"{slack.url}/_sandbox/settings", {"rate_limit": True, "rate_interval": 1.0, "freeze_clock": True})
    first, second = add_deployment(sessions, "catalog"), add_deployment(sessions, "ui")
    root(sessions, first)
    root(sessions, second)
    n = sender(sessions, slack, catalog)
    WebClient(token=DEFAULT_BOT_TOKEN, base_url=slack.api_url).chat_postMessage(channel=CH, text="someone else")

    assert n.drain_once(now=T0) == 0
    limited = row_of(sessions, f"dep:{first}:root")
    assert (limited.state, limited.attempts, limited.last_error) == (OutboxState.PENDING, 0, "ratelimited")
    assert limited.not_before == T0 + SECOND  # Retry-After: 1
    assert row_of(sessions, f"dep:{second}:root").not_before >= T0 + SECOND  # the whole channel waits
    assert n.drain_once(now=T0 + SECOND / 2) == 0
    assert len(calls(slack, "chat.postMessage")) == 2  # the direct post and the one 429

    http("POST", f"{slack.url}/_sandbox/settings", {"advance_clock": 1.0})  # Slack's second, and the sender's
    assert n.drain_once(now=T0 + SECOND) == 1
    http("POST", f"{slack.url}/_sandbox/settings", {"advance_clock": 1.0})
    assert n.drain_once(now=T0 + 2 * SECOND) == 1
    assert posted_keys(slack) == [f"dep:{first}:root", f"dep:{second}:root"]
    assert [c["status"] for c in calls(slack, "chat.postMessage")] == [200, 429, 200, 200]


# Never twice -----------------------------------------------------------------------------------------------------
def crash_after_posting(n: OutboxSender, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `n` die between Slack's answer and recording it."""

    def boom(*_args: Any) -> None:
        raise RuntimeError("killed between posting and recording")

    monkeypatch.setattr(n, "_record", boom)


@pytest.mark.parametrize("where", ["root", "reply"])
def test_a_crash_after_posting_is_recovered_by_metadata_without_posting_again(
    sessions: sessionmaker[Session],
    slack: SlackSandboxHandle,
    catalog: Catalog,
    monkeypatch: pytest.MonkeyPatch,
    where: str,
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    if where == "reply":
        sender(sessions, slack, catalog).drain_once(now=T0)
        reply(sessions, dep, "SCALE_UP")
    key = f"dep:{dep}:root" if where == "root" else f"dep:{dep}:event:1"
    dying = sender(sessions, slack, catalog, owner="dying")
    crash_after_posting(dying, monkeypatch)
    with pytest.raises(RuntimeError):
        dying.drain_once(now=T0 + 5 * SECOND)
    stuck = row_of(sessions, key)
    assert (stuck.state, stuck.attempts) == (OutboxState.SENDING, 1)
    assert posted_keys(slack).count(key) == 1

    survivor = sender(sessions, slack, catalog, owner="survivor")
    assert survivor.drain_once(now=T0 + 10 * SECOND) == 0  # the claim is not stale yet
    assert survivor.drain_once(now=T0 + 5 * SECOND + GRACE) == 1

    assert posted_keys(slack).count(key) == 1
    lookup = "conversations.history" if where == "root" else "conversations.replies"
    assert len(calls(slack, lookup)) == 1
    done = row_of(sessions, key)
    slack_msg = next(m for m in messages(slack) if m["metadata"]["event_payload"]["key"] == key)
    assert (done.state, done.slack_ts) == (OutboxState.SENT, slack_msg["ts"])
    assert "recovered" in (done.last_error or "")
    if where == "root":
        assert dep_of(sessions, dep).root_ts == slack_msg["ts"]


def test_a_sending_row_whose_post_never_happened_is_posted_exactly_once(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    n = sender(sessions, slack, catalog)
    n.drain_once(now=T0)
    event_id = add_event(sessions, dep, "SCALE_UP")
    key = f"dep:{dep}:event:{event_id}"
    add_row(
        sessions,
        key,
        dep,
        in_thread=True,
        payload={"render": "event", "event_id": event_id},
        state=OutboxState.SENDING,
        attempts=1,
    )  # claimed at T0 by a sender that died before posting
    assert n.drain_once(now=T0 + GRACE) == 1
    assert n.drain_once(now=T0 + GRACE + 2 * SECOND) == 0
    assert posted_keys(slack).count(key) == 1
    assert len(calls(slack, "conversations.replies")) == 1
    done = row_of(sessions, key)
    assert (done.state, done.attempts) == (OutboxState.SENT, 2)
    assert messages(slack)[-1]["thread_ts"] == dep_of(sessions, dep).root_ts


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A Web API URL that accepts connections and never answers (a request that may have reached Slack)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/"
    listener.close()


def test_a_timed_out_post_leaves_the_row_in_doubt_and_the_retry_checks_first(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog, black_hole: str
) -> None:
    add_row(sessions, "note:1", payload={"render": "message", "text": "hello"})
    silent = web_client(DEFAULT_BOT_TOKEN, black_hole, timeout=1)
    assert OutboxSender(sessions, silent, catalog, owner="n0", grace=GRACE, jitter=no_jitter).drain_once(now=T0) == 0
    doubt = row_of(sessions, "note:1")
    assert (doubt.state, doubt.attempts, doubt.not_before) == (OutboxState.SENDING, 1, T0 + 2 * SECOND)
    assert "timed out" in (doubt.last_error or "").lower()

    n = sender(sessions, slack, catalog, jitter=no_jitter)
    assert n.drain_once(now=T0 + SECOND) == 0  # backing off
    assert n.drain_once(now=T0 + 2 * SECOND) == 1
    assert len(calls(slack, "conversations.history")) == 1
    assert posted_keys(slack) == ["note:1"]
    assert "blocks" not in calls(slack, "chat.postMessage")[0]["params"]  # a text-only message stays text-only


def test_a_refused_connection_is_retried_without_a_lookup(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    add_row(sessions, "note:1", payload={"render": "message", "text": "hello"})
    offline = web_client(DEFAULT_BOT_TOKEN, "http://127.0.0.1:9/api/", timeout=2)
    assert sender(sessions, slack, catalog, client=offline, jitter=no_jitter).drain_once(now=T0) == 0
    row = row_of(sessions, "note:1")
    assert (row.state, row.attempts, row.not_before) == (OutboxState.PENDING, 1, T0 + 2 * SECOND)
    assert sender(sessions, slack, catalog).drain_once(now=T0 + 2 * SECOND) == 1
    assert calls(slack, "conversations.history") == [] and posted_keys(slack) == ["note:1"]


@pytest.mark.parametrize(
    ("channel", "payload", "error"),
    [
        ("C0NOPE", {"render": "message", "text": "hi"}, "channel_not_found"),
        (CH, {"render": "message"}, "render: "),
        (CH, {"render": "poem"}, "render: "),
    ],
)
def test_permanent_errors_fail_the_row_once(
    sessions: sessionmaker[Session],
    slack: SlackSandboxHandle,
    catalog: Catalog,
    channel: str,
    payload: dict[str, Any],
    error: str,
) -> None:
    add_row(sessions, "bad:1", payload=payload, channel=channel)
    n = sender(sessions, slack, catalog)
    assert n.drain_once(now=T0) == 0
    assert n.drain_once(now=T0 + timedelta(hours=1)) == 0
    bad = row_of(sessions, "bad:1")
    assert bad.state is OutboxState.FAILED and (bad.last_error or "").startswith(error)
    assert len(calls(slack, "chat.postMessage")) <= 1


def test_refused_blocks_fall_back_to_the_text_alone(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    add_row(sessions, "odd:1", payload={"render": "message", "text": "hi <@U0BOB>", "blocks": [{"type": "nonsense"}]})
    assert sender(sessions, slack, catalog).drain_once(now=T0) == 1
    row = row_of(sessions, "odd:1")
    assert (row.state, row.last_error) == (OutboxState.SENT, "plain-text fallback after invalid_blocks")
    first, second = calls(slack, "chat.postMessage")
    assert (first["error"], second["ok"]) == ("invalid_blocks", True)
    assert messages(slack)[0]["text"] == "hi <@U0BOB>"
    assert [b["type"] for b in messages(slack)[0]["blocks"]] == ["section"]


def test_replies_to_a_root_that_failed_fail_too(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions, channel="C0NOPE")
    root(sessions, dep)
    reply(sessions, dep, "SCALE_UP")
    add_row(sessions, f"dep:{dep}:root-update:2", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    n = sender(sessions, slack, catalog)
    n.drain_once(now=T0)
    n.drain_once(now=T0 + SECOND)
    with sessions() as s:
        rows = {r.idempotency_key: r for r in s.scalars(select(Outbox))}
    assert {r.state for r in rows.values()} == {OutboxState.FAILED}
    assert rows[f"dep:{dep}:root"].last_error == "channel_not_found"
    assert "no thread" in (rows[f"dep:{dep}:event:1"].last_error or "")
    assert len(calls(slack, "chat.postMessage")) == 1 and not calls(slack, "chat.update")


# Other renders ---------------------------------------------------------------------------------------------------
def test_incident_announcement_links_to_the_thread_and_cross_posts_thread(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    n = sender(sessions, slack, catalog)
    n.drain_once(now=T0)
    event_id = add_event(sessions, dep, "ROLLBACK", EventKind.ROLLBACK_STARTED, cause="alarm", alarms=["5xx"])
    add_row(
        sessions,
        f"dep:{dep}:incident:x",
        dep,
        channel=ws.INCIDENT_CHANNEL,
        payload={"render": "incident", "event_id": event_id},
    )
    add_row(
        sessions,
        f"dep:{dep}:xpost:-stop-",
        dep,
        in_thread=True,
        payload={"render": "message", "text": "↩️ <@U0CAROL> asked for a rollback from <#C0INC42>."},
    )
    assert n.drain_once(now=T0 + SECOND) == 2  # different channels: both go in the same pass
    incident = messages(slack, ws.INCIDENT_CHANNEL)
    assert len(incident) == 1 and "thread_ts" not in incident[0]
    root_ts = dep_of(sessions, dep).root_ts or ""
    assert f"/archives/{CH}/p{root_ts.replace('.', '')}" in str(incident[0]["blocks"])
    assert messages(slack)[-1]["thread_ts"] == dep_of(sessions, dep).root_ts


def test_ephemeral_goes_to_its_user(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    add_row(
        sessions, "eph:1", kind=OutboxKind.EPHEMERAL, payload={"render": "message", "text": "only you"}, user_id=ws.BOB
    )
    assert sender(sessions, slack, catalog).drain_once(now=T0) == 1
    assert row_of(sessions, "eph:1").state is OutboxState.SENT
    assert calls(slack, "chat.postEphemeral")[0]["params"]["user"] == ws.BOB


# Replicas --------------------------------------------------------------------------------------------------------
CHANNELS = [CH, ws.INCIDENT_CHANNEL, "D0ALICE", "D0BOB", "D0CAROL", "D0DAVE"]


def test_two_notifiers_draining_at_once_post_each_message_exactly_once(
    sessions: sessionmaker[Session], database_url: str, slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    keys = []
    for i, channel in enumerate(CHANNELS * 2):
        dep = add_deployment(sessions, f"svc{i}", channel)
        root(sessions, dep)
        keys += [f"dep:{dep}:root"] + [
            f"dep:{dep}:event:{add_event(sessions, dep, s)}" for s in ("SCALE_UP", "BAKE_TIME")
        ]
        for j, event_key in enumerate(keys[-2:]):
            event_id = int(event_key.rsplit(":", 1)[1])
            add_row(
                sessions,
                event_key,
                dep,
                in_thread=True,
                payload={"render": "event", "event_id": event_id},
                at=T0 + j * SECOND / 10,
            )
    other = make_engine(database_url)
    workers = [sender(sessions, slack, catalog, "a"), sender(session_factory(other), slack, catalog, "b")]
    gate, errors, sent = threading.Barrier(2), [], {"a": 0, "b": 0}

    def run(n: OutboxSender) -> None:
        try:
            gate.wait()
            for step in range(60):
                sent[n.owner] += n.drain_once(now=T0 + step * SECOND)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    other.dispose()
    assert not errors
    assert Counter(posted_keys(slack)) == Counter(keys)  # every message, each exactly once
    assert sent["a"] + sent["b"] == len(keys)
    with sessions() as s:
        assert {r.state for r in s.scalars(select(Outbox))} == {OutboxState.SENT}
        for row in s.scalars(select(Deployment)):
            shown = messages(slack, row.channel_id)
            thread = [m for m in shown if m.get("thread_ts") == row.root_ts and m["ts"] != row.root_ts]
            assert [m["metadata"]["event_payload"]["key"] for m in thread] == sorted(
                (k for k in keys if k.startswith(f"dep:{row.id}:event:")), key=lambda k: int(k.rsplit(":", 1)[1])
            )


def test_the_notifier_never_uses_sleeping_retry_handlers(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    plain = WebClient(token=DEFAULT_BOT_TOKEN, base_url=slack.api_url, timeout=5)
    assert plain.retry_handlers  # slack_sdk's defaults retry (and sleep) on connection errors
    n = OutboxSender(sessions, plain, catalog, owner="n1")
    assert n.client.retry_handlers == [] and n.client.base_url == slack.api_url
    with pytest.raises(ValueError, match="grace"):  # renewed every third of it: not several times a second
        OutboxSender(sessions, plain, catalog, owner="n1", grace=timedelta(milliseconds=500))
