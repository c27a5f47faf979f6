"""Slack's pace of one post per second per channel, as Slack counts it (when it stored each post), across senders."""

from __future__ import annotations

import time

from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.slack.sender_support import add_deployment, messages, root, sender


def test_a_slow_post_delays_the_channels_next_turn_in_every_sender(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    # Slack stamps a post when it stores it, at the end of a slow call: the next post in the channel, from any
    # replica, must come a whole interval after that, not after the slow call began.
    root(sessions, add_deployment(sessions, "catalog"))
    root(sessions, add_deployment(sessions, "ui"))
    first, second = sender(sessions, slack, catalog, owner="a"), sender(sessions, slack, catalog, owner="b")
    settings = f"{slack.url}/_sandbox/settings"
    http("POST", settings, {"latency": 0.8, "latency_methods": ["chat.postMessage"]})
    deadline = time.monotonic() + 10
    # Stored 0.8 s after the call went. A pass that reached the call after its claimed turn hands it back (a loaded
    # machine can take that long to claim and render): the next pass posts it.
    while first.drain_once() == 0:
        assert time.monotonic() < deadline, "the first post never went"
        time.sleep(0.02)
    http("POST", settings, {"latency": 0.0})
    while second.drain_once() == 0:
        assert time.monotonic() < deadline, "the second post never went"
        time.sleep(0.02)
    stored = sorted(float(m["ts"]) for m in messages(slack))
    assert len(stored) == 2 and stored[1] - stored[0] >= first.post_interval.total_seconds(), stored
