"""The sender through a Slack outage: failed look-ups spend no attempt, five minutes of failures lose nothing.

The stand-in's clock stands still and the test moves it with the sender's (`drain_once(now=…)`), so five minutes
of Slack failing every call take a second or two of real time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import backoff
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxState
from bot.slack.sender import OutboxSender
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.slack.sender_support import (
    SECOND,
    T0,
    add_deployment,
    calls,
    messages,
    no_jitter,
    reply,
    root,
    row_of,
    sender,
)

OUTAGE = timedelta(minutes=5)
UNSENT = (OutboxState.PENDING, OutboxState.SENDING)


def settings(slack: SlackSandboxHandle, **body: Any) -> None:
    status, data, _ = http("POST", f"{slack.url}/_sandbox/settings", body)
    assert status == 200, data


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def test_a_failed_look_up_spends_no_attempt_and_backs_off_on_its_own(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    key = f"dep:{dep}:root"
    settings(
        slack,
        faults=[
            {"method": "chat.postMessage", "status": 503},  # the post may have landed: in doubt
            {"method": "conversations.history", "status": 503, "times": 3},  # and Slack cannot say, three times
        ],
    )
    n = sender(sessions, slack, catalog, jitter=no_jitter)
    # (when the pass runs, the row after it: state, send attempts, failed look-ups, next try)
    steps = [
        (0, OutboxState.SENDING, 1, 0, 2),  # the post's 5xx: one attempt, look up in 2 s
        (2, OutboxState.SENDING, 1, 1, 4),  # look-up failed: still one attempt, its own back-off (2 s)
        (4, OutboxState.SENDING, 1, 2, 8),  # 4 s
        (8, OutboxState.SENDING, 1, 3, 16),  # 8 s
        (16, OutboxState.SENT, 2, 0, None),  # Slack answers: not there, posted again (the second attempt)
    ]
    for at, state, attempts, lookups, retry in steps:
        n.drain_once(now=T0 + at * SECOND)
        row = row_of(sessions, key)
        assert (row.state, row.attempts, row.lookups) == (state, attempts, lookups), at
        if retry is not None:
            assert _aware(row.not_before) == T0 + retry * SECOND, at
    assert len(calls(slack, "chat.postMessage")) == 2 and len(messages(slack)) == 1


def _drive_through(n: OutboxSender, slack: SlackSandboxHandle, sessions: sessionmaker[Session], keys: list[str]) -> int:
    """Drain at each row's next due time, Slack's clock moved on with the sender's; return the passes it took."""
    now = T0
    for passes in range(1, 200):
        n.drain_once(now=now)
        rows = [row_of(sessions, k) for k in keys]
        if all(r.state not in UNSENT for r in rows):
            return passes
        later = [_aware(r.not_before) for r in rows if r.state in UNSENT and _aware(r.not_before) > now]
        step = min(later) - now if later else SECOND
        settings(slack, advance_clock=step.total_seconds())
        now += step
        assert now - T0 < 2 * OUTAGE, [(r.idempotency_key, r.state, r.attempts, r.last_error) for r in rows]
    raise AssertionError("the outbox never emptied")


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 503},  # Slack's edge: an HTML page, the call may or may not have been carried out
        {"status": 503, "after_store": True},  # stored, then the page: only a look-up can tell
        {"error": "fatal_error", "after_store": True},  # "some aspect may have succeeded"
        {"status": 429, "retry_after": 30},  # Slack's pacing, renewed for five minutes
    ],
    ids=["503", "503-after-storing", "fatal_error-after-storing", "429"],
)
def test_five_minutes_of_slack_failing_every_call_delays_the_thread_and_loses_nothing(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog, fault: dict[str, Any]
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    reply(sessions, dep, "SCALE_UP")
    keys = [f"dep:{dep}:root", f"dep:{dep}:event:1"]
    settings(slack, freeze_clock=True)
    settings(slack, faults=[{"method": "*", "times": -1, "seconds": OUTAGE.total_seconds(), **fault}])
    try:
        _drive_through(sender(sessions, slack, catalog, jitter=no_jitter), slack, sessions, keys)
    finally:
        settings(slack, faults=[], freeze_clock=False)
    rows = [row_of(sessions, k) for k in keys]
    assert [r.state for r in rows] == [OutboxState.SENT] * 2, [r.last_error for r in rows]
    assert all(r.attempts <= backoff.MAX_ATTEMPTS for r in rows)
    shown = messages(slack)  # each once, the reply in the root's thread
    assert len(shown) == 2 and shown[1]["thread_ts"] == shown[0]["ts"] == rows[0].slack_ts
    assert (
        rows[0].sent_at is not None and _aware(rows[0].sent_at) >= T0 + OUTAGE
    )  # it went (or was found) once Slack was back, not before


@pytest.mark.parametrize(
    ("last", "state", "error"),
    [
        ([{"status": 503, "after_store": True}], OutboxState.SENT, "recovered: found by metadata"),  # in Slack
        ([{}], OutboxState.FAILED, "gave up after 2 attempts"),  # looked, not there: given up
    ],
    ids=["stored", "not-stored"],
)
def test_a_last_attempt_that_may_have_landed_is_looked_up_before_it_is_given_up(
    sessions: sessionmaker[Session],
    slack: SlackSandboxHandle,
    catalog: Catalog,
    last: list[dict[str, Any]],
    state: OutboxState,
    error: str,
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    key = f"dep:{dep}:root"
    first = {"method": "chat.postMessage", "status": 503}  # may have landed: looked up (not there), posted again
    settings(slack, faults=[first, *({**first, **f} for f in last)])  # and the last post fails the same way
    client = sender(sessions, slack, catalog).client
    n = OutboxSender(sessions, client, catalog, owner="n1", grace=60 * SECOND, max_attempts=2, jitter=no_jitter)
    for at in (0, 2, 4, 6):
        n.drain_once(now=T0 + at * SECOND)
    row = row_of(sessions, key)
    assert (row.state, row.last_error, row.attempts) == (state, error, 2)
    assert len(messages(slack)) == (1 if state is OutboxState.SENT else 0)
    assert len(calls(slack, "chat.postMessage")) == 2  # never a third post
