"""Slack's pace of one post per second per channel, as Slack counts it (when it stored each post), across senders."""

from __future__ import annotations

import threading
import time

from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from bot.slack.sender import TURN_WINDOW, OutboxSender
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


def test_a_post_still_in_flight_keeps_its_channels_turn_from_every_other_sender(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    # A post slower than its reserved turn (claim + two intervals): another sender that claims the channel then
    # would post while the first is still in flight, and Slack would store the later one first, or within the
    # second. The turn stays taken until the slow call is answered.
    root(sessions, add_deployment(sessions, "catalog"))
    root(sessions, add_deployment(sessions, "ui"))
    first, second = sender(sessions, slack, catalog, owner="a"), sender(sessions, slack, catalog, owner="b")
    settings = f"{slack.url}/_sandbox/settings"
    # The first call outlasts its turn's reservation (its window to be called in, plus an interval) by 2 s.
    slow = (max(first.post_interval, TURN_WINDOW) + first.post_interval).total_seconds() + 2.0
    http("POST", settings, {"latency": slow, "latency_methods": ["chat.postMessage"]})
    sent: list[int] = []
    worker = threading.Thread(target=lambda: sent.append(_drain_until_sent(first)), daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while not slack.store.in_flight["chat.postMessage"]:
        assert time.monotonic() < deadline, "the first post never went"
        time.sleep(0.01)
    began = time.monotonic()
    http("POST", settings, {"latency": 0.0})  # calls made from now on are quick
    while time.monotonic() - began < slow + 0.5:  # the second sender tries throughout the slow call, and after
        second.drain_once()
        time.sleep(0.05)
    worker.join(timeout=30)
    while len(messages(slack)) < 2:
        assert time.monotonic() < deadline, "the second post never went"
        second.drain_once()
        time.sleep(0.05)
    stored = sorted((float(m["ts"]), m["text"]) for m in messages(slack))
    assert sent == [1]
    assert "catalog" in stored[0][1], stored  # the slow post, begun first, is stored first
    assert stored[1][0] - stored[0][0] >= first.post_interval.total_seconds(), stored


def _drain_until_sent(sender_: OutboxSender) -> int:
    """Drain until a pass sends something (a loaded machine may hand the first claim back); how many it sent."""
    deadline = time.monotonic() + 30
    while (sent := sender_.drain_once()) == 0:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    return sent
