"""Sender lanes: different channels in parallel, one channel in order, holds and stops shared by every lane at once,
outcomes recorded as they come; over real HTTP against the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.db import pace
from bot.db.sessions import make_engine, session_factory
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxKind, OutboxState
from bot.domain.outbox import post_pace_key
from bot.slack.metrics import MeteredWebClient
from bot.slack.sender import OutboxSender
from models import Deployment, Outbox
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.slack.sender_support import (
    GRACE,
    SECOND,
    T0,
    add_deployment,
    add_row,
    calls,
    drain_until_quiet,
    messages,
    posted_keys,
    reply,
    root,
    row_of,
)

CHANNELS = [ws.DEPLOYS_CHANNEL, ws.INCIDENT_CHANNEL, "D0ALICE", "D0BOB", "D0CAROL", "D0DAVE"]
WAIT = 10.0  # s a gated call waits for what it waits for before the test fails


class Gated(MeteredWebClient):
    """A client that logs when each call began and ended, and can hold a call until something has happened."""

    def __init__(self, slack: SlackSandboxHandle, gate: Callable[[str, dict[str, Any]], None] | None = None) -> None:
        super().__init__(token=DEFAULT_BOT_TOKEN, base_url=slack.api_url, timeout=10, retry_handlers=[])
        self.gate = gate
        self.spans: list[tuple[str, str, float, float]] = []  # method, channel, began, ended
        self._lock = threading.Lock()

    def api_call(self, api_method: str, **kwargs: Any) -> Any:
        began = time.monotonic()
        params = kwargs.get("json") or kwargs.get("data") or kwargs.get("params") or {}
        try:
            if self.gate is not None:
                self.gate(api_method, params)
            return super().api_call(api_method, **kwargs)
        finally:
            with self._lock:
                self.spans.append((api_method, str(params.get("channel", "")), began, time.monotonic()))


def lanes_sender(
    sessions: sessionmaker[Session], client: MeteredWebClient, catalog: Catalog, owner: str = "n1", **kw: Any
) -> OutboxSender:
    """A sender with lanes (4 unless told) on the given client."""
    return OutboxSender(sessions, client, catalog, owner=owner, grace=GRACE, **{"lanes": 4, **kw})


def note(sessions: sessionmaker[Session], key: str, channel: str, **fields: Any) -> int:
    """A plain message queued for a channel, outside any deployment."""
    return add_row(sessions, key, payload={"render": "message", "text": key}, channel=channel, **fields)


def wait_until(done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {WAIT:g} s for {what}")
        time.sleep(0.01)


def in_flight_together(n: int) -> Callable[[str, dict[str, Any]], None]:
    """A gate that lets chat.postMessage calls through only once `n` of them are under way at the same time."""
    barrier = threading.Barrier(n, timeout=WAIT)

    def gate(method: str, _params: dict[str, Any]) -> None:
        if method == "chat.postMessage":
            barrier.wait()  # raises BrokenBarrierError (a failed call) if fewer than n ever come

    return gate


# Parallel across channels, in order within one --------------------------------------------------------------------
def test_posts_to_different_channels_are_in_flight_at_once(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    for i, channel in enumerate(CHANNELS[:4]):
        root(sessions, add_deployment(sessions, f"svc{i}", channel))
    client = Gated(slack, in_flight_together(4))
    # One lane would send one post at a time: the gate never opens and every call fails.
    assert lanes_sender(sessions, client, catalog).drain_once(now=T0) == 4
    assert len([c for c in calls(slack, "chat.postMessage") if c["ok"]]) == 4


def test_one_channels_calls_never_overlap_and_keep_their_order(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    deps = [add_deployment(sessions, f"svc{i}", CHANNELS[i % 2]) for i in range(4)]  # two deployments a channel
    for dep in deps:
        root(sessions, dep)
    client = Gated(slack)
    n = lanes_sender(sessions, client, catalog)
    now = drain_until_quiet(n, T0)
    for dep in deps:
        for stage in ("SCALE_UP", "TEST_TRAFFIC_SHIFT", "BAKE_TIME"):
            reply(sessions, dep, stage)
        add_row(sessions, f"dep:{dep}:root-update:1", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    # Slow posts: a lane that did not wait for its channel's previous call would overlap it.
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 0.2, "latency_methods": ["chat.postMessage"]})
    drain_until_quiet(n, now)
    for channel in CHANNELS[:2]:
        spans = sorted((s for s in client.spans if s[1] == channel), key=lambda s: s[2])
        assert all(a[3] <= b[2] for a, b in itertools.pairwise(spans)), spans
    for dep in deps:
        with sessions() as s:
            row = s.get_one(Deployment, dep)
        thread = [m for m in messages(slack, row.channel_id) if m.get("thread_ts") == row.root_ts != m["ts"]]
        keys = [m["metadata"]["event_payload"]["key"] for m in thread]
        assert keys == sorted(keys, key=lambda k: int(k.rsplit(":", 1)[1])) and len(keys) == 3
    edited = {c["params"]["ts"] for c in calls(slack, "chat.update") if c["ok"]}
    assert len(edited) == len(deps)


# Holds and stops ---------------------------------------------------------------------------------------------------
def test_a_429_on_chat_update_in_one_lane_holds_every_lanes_edits_at_once(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    first, second = add_deployment(sessions, "catalog", CHANNELS[0]), add_deployment(sessions, "ui", CHANNELS[1])
    root(sessions, first)
    root(sessions, second)
    n = lanes_sender(sessions, Gated(slack), catalog)
    now = drain_until_quiet(n, T0)
    add_row(sessions, f"dep:{first}:root-update:1", first, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    note(sessions, "note:b", CHANNELS[1])  # the second lane's first call, held until the 429 is recorded
    add_row(sessions, f"dep:{second}:root-update:1", second, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    http("POST", f"{slack.url}/_sandbox/settings", {"faults": [{"method": "chat.update", "status": 429}]})

    def gate(method: str, params: dict[str, Any]) -> None:
        if method == "chat.postMessage":
            wait_until(lambda: row_of(sessions, f"dep:{first}:root-update:1").last_error == "ratelimited", "the 429")

    lanes_sender(sessions, Gated(slack, gate), catalog, owner="n2").drain_once(now=now + SECOND)
    assert [c["status"] for c in calls(slack, "chat.update")] == [429]  # the other lane's edit was never sent
    held = row_of(sessions, f"dep:{second}:root-update:1")
    assert (held.state, held.attempts, held.lease_owner) == (OutboxState.PENDING, 0, None)  # handed back untouched
    assert row_of(sessions, "note:b").state is OutboxState.SENT


def test_a_bot_level_error_in_one_lane_stops_every_lane_and_marks_nothing_sent_that_was_not(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    for i, channel in enumerate(CHANNELS[:4]):
        note(sessions, f"note:{i}", channel)  # claimed in this order; two lanes take note:0 and note:1 first
    http(
        "POST", f"{slack.url}/_sandbox/settings", {"faults": [{"method": "chat.postMessage", "error": "token_revoked"}]}
    )

    def gate(method: str, params: dict[str, Any]) -> None:
        if params.get("channel") != CHANNELS[0]:  # in flight until the refusal is recorded (every lane stopped)
            wait_until(lambda: row_of(sessions, "note:0").last_error == "token_revoked", "the refusal's record")

    n = lanes_sender(sessions, Gated(slack, gate), catalog, lanes=2)
    assert n.drain_once(now=T0) == 1  # the call already in flight in the other lane went through
    states = {f"note:{i}": row_of(sessions, f"note:{i}") for i in range(4)}
    assert states["note:0"].state is OutboxState.PENDING and states["note:0"].last_error == "token_revoked"
    assert states["note:1"].state is OutboxState.SENT
    for key in ("note:2", "note:3"):  # never called: handed back untouched
        assert (states[key].state, states[key].attempts, states[key].lease_owner) == (OutboxState.PENDING, 0, None)
    assert len(calls(slack, "chat.postMessage")) == 2


# Recorded as they come -------------------------------------------------------------------------------------------
def test_an_outcome_is_recorded_while_other_lanes_still_call_slack(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    note(sessions, "note:fast", CHANNELS[0])
    note(sessions, "note:slow", CHANNELS[1])

    def gate(method: str, params: dict[str, Any]) -> None:
        if params.get("channel") == CHANNELS[1]:  # in flight until the other lane's post is recorded
            wait_until(lambda: row_of(sessions, "note:fast").state is OutboxState.SENT, "the fast post's record")

    assert lanes_sender(sessions, Gated(slack, gate), catalog, lanes=2).drain_once(now=T0) == 2
    assert Counter(c["params"]["channel"] for c in calls(slack, "chat.postMessage") if c["ok"]) == Counter(CHANNELS[:2])


def test_a_record_that_fails_keeps_what_was_recorded_and_hands_back_only_what_was_never_sent(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i, channel in enumerate(CHANNELS[:3]):
        note(sessions, f"note:{i}", channel)
    recorded = threading.Event()  # the first transaction of outcomes went through

    def gate(method: str, params: dict[str, Any]) -> None:
        if params.get("channel") == CHANNELS[1]:
            wait_until(lambda: row_of(sessions, "note:0").state is OutboxState.SENT, "the first record")

    n = lanes_sender(sessions, Gated(slack, gate), catalog, lanes=2)
    real = n._record

    def record(done: Any, now: Any) -> None:
        if recorded.is_set():
            raise RuntimeError("the database went away")
        real(done, now)
        recorded.set()

    monkeypatch.setattr(n, "_record", record)
    with pytest.raises(RuntimeError):
        n.drain_once(now=T0)
    assert row_of(sessions, "note:0").state is OutboxState.SENT  # recorded before the failure: kept
    sent_unrecorded = row_of(sessions, "note:1")  # in Slack, not recorded: in doubt under its lease, never PENDING
    assert (sent_unrecorded.state, sent_unrecorded.lease_owner) == (OutboxState.SENDING, "n1")
    untouched = row_of(sessions, "note:2")
    if untouched.state is OutboxState.PENDING:  # never taken: handed back as it was
        assert (untouched.attempts, untouched.lease_owner) == (0, None)
    else:  # a lane took it before the failure stopped them: sent, not recorded, in doubt like note:1
        assert untouched.state is OutboxState.SENDING
    shown = Counter(c["params"]["channel"] for c in calls(slack, "chat.postMessage") if c["ok"])
    assert all(v == 1 for v in shown.values())


# The claim --------------------------------------------------------------------------------------------------------
def test_a_channel_whose_turn_is_taken_leaves_the_batch_to_free_ones(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    busy, free = add_deployment(sessions, "catalog", CHANNELS[0]), add_deployment(sessions, "ui", CHANNELS[1])
    with sessions.begin() as s:  # both roots in Slack already; their channels as Slack named them
        for dep, ts in ((busy, "1740830400.000100"), (free, "1740830400.000200")):
            s.get_one(Deployment, dep).root_ts = ts
    reply(sessions, busy, "SCALE_UP")  # first in the queue
    reply(sessions, free, "SCALE_UP")
    with sessions.begin() as s:
        pace.reserve(s, {post_pace_key(CHANNELS[0]): T0 + 5 * SECOND}, T0)  # another replica's turn there
    # A batch of one: the busy channel's reply, read first, would take it and nothing would go.
    n = lanes_sender(sessions, Gated(slack), catalog, batch=1)
    assert n.drain_once(now=T0 + SECOND) == 1
    assert row_of(sessions, f"dep:{free}:event:2").state is OutboxState.SENT
    assert row_of(sessions, f"dep:{busy}:event:1").state is OutboxState.PENDING


# Replicas --------------------------------------------------------------------------------------------------------
def test_two_replicas_with_lanes_post_each_message_once_in_order_at_slacks_pace(
    sessions: sessionmaker[Session], database_url: str, slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    keys: dict[int, list[str]] = {}
    for i, channel in enumerate(CHANNELS * 2):
        dep = add_deployment(sessions, f"svc{i}", channel)
        root(sessions, dep)
        keys[dep] = [f"dep:{dep}:root"]
        for stage in ("SCALE_UP", "BAKE_TIME"):
            event = reply(sessions, dep, stage)
            keys[dep].append(row_of_id(sessions, event))
    # Slack's one post a second per channel is enforced (a 429 otherwise), and calls take a while: lanes overlap.
    http("POST", f"{slack.url}/_sandbox/settings", {"rate_limit": True, "latency": 0.05})
    engines = [make_engine(database_url) for _ in range(2)]
    replicas = [lanes_sender(session_factory(e), Gated(slack), catalog, owner=f"r{i}") for i, e in enumerate(engines)]
    everything = [k for ks in keys.values() for k in ks]
    errors: list[BaseException] = []

    def drain(replica: OutboxSender) -> None:
        try:
            deadline = time.monotonic() + 60
            while len(posted_keys(slack)) < len(everything) and time.monotonic() < deadline:
                replica.drain_once()
                time.sleep(0.05)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=90)
    for e in engines:
        e.dispose()
    assert not errors
    assert Counter(posted_keys(slack)) == Counter(everything)  # every message, each exactly once
    assert [c["status"] for c in calls(slack, "chat.postMessage") if not c["ok"]] == []  # no 429: the pace held
    for dep, expected in keys.items():
        with sessions() as s:
            row = s.get_one(Deployment, dep)
        thread = [m for m in messages(slack, row.channel_id) if m.get("thread_ts") == row.root_ts != m["ts"]]
        assert [m["metadata"]["event_payload"]["key"] for m in thread] == expected[1:]


def row_of_id(sessions: sessionmaker[Session], row_id: int) -> str:
    """The idempotency key of an outbox row by id."""
    with sessions() as s:
        return s.get_one(Outbox, row_id).idempotency_key


def test_lanes_must_be_at_least_one(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    with pytest.raises(ValueError, match="lanes"):
        lanes_sender(sessions, Gated(slack), catalog, lanes=0)
