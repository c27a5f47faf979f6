"""The sender under Slack's failures, over real HTTP against the stand-in's injected faults (issue 11, item 4)."""

from __future__ import annotations

from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxKind, OutboxState
from bot.slack.health import SlackHealth
from bot.slack.sender import OutboxSender
from sandbox.slack import workspace as ws
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.slack.sender_support import (
    GRACE,
    SECOND,
    T0,
    add_deployment,
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


def settings(slack: SlackSandboxHandle, **body: Any) -> None:
    status, data, _ = http("POST", f"{slack.url}/_sandbox/settings", body)
    assert status == 200, data


def test_fatal_error_after_the_post_was_stored_is_looked_up_not_posted_twice(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    settings(slack, faults=[{"method": "chat.postMessage", "error": "fatal_error", "after_store": True}])
    n = sender(sessions, slack, catalog, jitter=no_jitter)
    assert n.drain_once(now=T0) == 0
    doubt = row_of(sessions, f"dep:{dep}:root")
    assert (doubt.state, doubt.last_error) == (OutboxState.SENDING, "fatal_error")  # in doubt, not retried blindly
    assert n.drain_once(now=T0 + 2 * SECOND) == 1  # found by its metadata: recorded, not posted again
    assert len(messages(slack)) == 1 and len(calls(slack, "chat.postMessage")) == 1
    found = row_of(sessions, f"dep:{dep}:root")
    assert (found.state, found.slack_ts) == (OutboxState.SENT, messages(slack)[0]["ts"])
    assert dep_of(sessions, dep).root_ts == found.slack_ts


def test_a_5xx_where_the_bot_cannot_read_history_posts_again_and_keeps_the_thread(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    # #random: public, so chat:write.public lets the bot post, but it is not a member: no history to search.
    dep = add_deployment(sessions, channel=ws.RANDOM_CHANNEL)
    root(sessions, dep)
    reply(sessions, dep, "SCALE_UP")
    settings(slack, faults=[{"method": "chat.postMessage", "status": 500}])
    n = sender(sessions, slack, catalog, jitter=no_jitter)
    assert n.drain_once(now=T0) == 0
    assert row_of(sessions, f"dep:{dep}:root").state is OutboxState.SENDING
    n.drain_once(now=T0 + 2 * SECOND)
    n.drain_once(now=T0 + 4 * SECOND)
    assert calls(slack, "conversations.history") == []  # never asked where it would be refused
    assert [r.state for r in (row_of(sessions, f"dep:{dep}:root"), row_of(sessions, f"dep:{dep}:event:1"))] == [
        OutboxState.SENT
    ] * 2
    shown = messages(slack, ws.RANDOM_CHANNEL)
    assert len(shown) == 2 and shown[1]["thread_ts"] == shown[0]["ts"]


def test_refused_root_blocks_fall_back_to_plain_text_and_the_thread_follows(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    reply(sessions, dep, "SCALE_UP")
    settings(slack, blocks_char_limit=200)  # every rich root is "too long" now
    n = sender(sessions, slack, catalog)
    assert n.drain_once(now=T0) == 1
    posted = row_of(sessions, f"dep:{dep}:root")
    assert (posted.state, posted.last_error) == (OutboxState.SENT, "plain-text fallback after msg_blocks_too_long")
    settings(slack, blocks_char_limit=13_000)
    n.drain_once(now=T0 + 2 * SECOND)
    shown = messages(slack)
    assert len(shown) == 2 and shown[1]["thread_ts"] == shown[0]["ts"] == dep_of(sessions, dep).root_ts


def _counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_revoked_token_holds_the_outbox_fails_readiness_and_drops_nothing(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    reply(sessions, dep, "SCALE_UP")
    health = SlackHealth()
    n = OutboxSender(sessions, sender(sessions, slack, catalog).client, catalog, owner="h", grace=GRACE, health=health)
    before = _counter("deploybot_slack_bot_errors_total", error="token_revoked")
    settings(slack, token_error="token_revoked")
    for minute in range(30):  # half an hour of passes: nothing is given up on
        n.drain_once(now=T0 + minute * 60 * SECOND)
    held = row_of(sessions, f"dep:{dep}:root")
    assert (held.state, held.attempts, held.last_error) == (OutboxState.PENDING, 0, "token_revoked")
    assert health.blocked == "token_revoked"
    assert _counter("deploybot_slack_bot_errors_total", error="token_revoked") - before == 30
    assert len(calls(slack, "chat.postMessage")) == 30  # one probe per hold, not a burst

    settings(slack, token_error=None)
    n.drain_once(now=T0 + 31 * 60 * SECOND)
    n.drain_once(now=T0 + 32 * 60 * SECOND)
    assert health.blocked is None
    assert posted_keys(slack) == [f"dep:{dep}:root", f"dep:{dep}:event:1"]


def test_missing_scope_is_the_bots_problem_not_the_messages(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    settings(slack, scopes=["commands"])
    health = SlackHealth()
    n = OutboxSender(sessions, sender(sessions, slack, catalog).client, catalog, owner="h", grace=GRACE, health=health)
    n.drain_once(now=T0)
    assert row_of(sessions, f"dep:{dep}:root").state is OutboxState.PENDING and health.blocked == "missing_scope"


def edit(sessions: sessionmaker[Session], dep: int, version: int) -> None:
    """A root-message edit for the deployment's `version`, queued at T0."""
    add_row(sessions, f"dep:{dep}:root-update:{version}", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})


def test_a_429_on_chat_update_holds_every_edit_in_every_replica_until_retry_after_from_the_answer(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    first, second = add_deployment(sessions, "catalog"), add_deployment(sessions, "ui")
    root(sessions, first)
    root(sessions, second)
    n, other = sender(sessions, slack, catalog), sender(sessions, slack, catalog, owner="n2")
    drain_until_quiet(n, T0)
    edit(sessions, first, 1)
    settings(slack, faults=[{"method": "chat.update", "status": 429, "retry_after": 5}])
    ticks = iter(range(100))  # a clock that moves on every reading: the answer comes after the pass began
    ticking = OutboxSender(
        sessions, n.client, catalog, owner="n3", grace=GRACE, clock=lambda: T0 + next(ticks) * SECOND
    )
    ticking.drain_once()
    limited = row_of(sessions, f"dep:{first}:root-update:1")
    assert (limited.state, limited.attempts, limited.last_error) == (OutboxState.PENDING, 0, "ratelimited")
    assert limited.not_before > T0 + 5 * SECOND  # Retry-After counts from Slack's answer, not the pass's start
    assert limited.not_before < T0 + 10 * SECOND

    edit(sessions, first, 2)  # newer state: coalescing it with the held edit must not send it sooner
    edit(sessions, second, 1)  # chat.update is limited per workspace: another message's edit waits too
    for replica, at in ((n, 1), (other, 2), (n, 3), (other, 5)):
        replica.drain_once(now=T0 + at * SECOND)
    assert [c["status"] for c in calls(slack, "chat.update")] == [429]

    settings(slack, faults=[])  # Slack's Retry-After runs in real time: 12 s have passed for Slack too
    other.drain_once(now=T0 + 12 * SECOND)
    assert [c["status"] for c in calls(slack, "chat.update")] == [429, 200, 200]
    assert row_of(sessions, f"dep:{first}:root-update:2").state is OutboxState.SENT
    held = row_of(sessions, f"dep:{first}:root-update:1")
    assert held.state is OutboxState.SENT and (held.last_error or "").startswith("coalesced")
