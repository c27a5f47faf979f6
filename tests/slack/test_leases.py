"""Replicas: claims end with their owner (issue 13, item 2), and Slack's pace holds across them (item 4).

The owner is a real child process on the same database, killed with SIGKILL; what it held must be taken by the
survivor at its next pass, long before the lease's own time runs out.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db import leases
from bot.db.sessions import make_engine, session_factory
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxKind, OutboxState
from bot.slack.clients import web_client
from bot.slack.lookup import METADATA_EVENT
from bot.slack.metrics import MeteredWebClient
from bot.slack.sender import OutboxSender
from models import Deployment, Outbox, utcnow
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.slack.sender_support import (
    CH,
    GRACE,
    T0,
    add_deployment,
    add_row,
    calls,
    drain_until_quiet,
    root,
    row_of,
    sender,
)
from tests.support import example_catalog

ROOT = Path(__file__).resolve().parents[2]
SECOND = timedelta(seconds=1)

CHILD = """
import sys, time
from datetime import timedelta
from bot.db.sessions import make_engine, session_factory
from bot.db import leases
from bot.db.sessions import make_engine, session_factory
url, owner, role = sys.argv[1], sys.argv[2], sys.argv[3]
sessions = session_factory(make_engine(url))
held = leases.liveness(sessions, owner)
if role == "sender":
    from bot.slack.clients import web_client
    from bot.slack.sender import OutboxSender
    from tests.support import example_catalog
    client = web_client(sys.argv[5], sys.argv[4])
    print("ready", flush=True)
    OutboxSender(sessions, client, example_catalog(), owner=owner, grace=timedelta(seconds=60)).drain_once()
elif role == "reconciler":
    from bot.engine.reconciler import PassReport
    from tests.support import make_usecases, example_catalog
    reconciler = make_usecases(sessions, sys.argv[4], example_catalog(), owner=owner).reconciler
    print("claimed", len(reconciler._claim(reconciler.d.clock(), PassReport())), flush=True)
else:
    print("ready", flush=True)
time.sleep(120)
"""


def child(database_url: str, owner: str, role: str, *args: str) -> subprocess.Popen[str]:
    """A process on the same database holding `owner`'s liveness; it prints one line when it is under way."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, owner, role, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the child process did not start"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    """SIGKILL: no handler runs, nothing is handed back."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def dead_soon(sessions: sessionmaker[Session], owner: str, limit: float = 20.0) -> set[str]:
    """Which of [owner] the survivor sees as dead, asked until it says so or `limit` seconds pass."""
    mine = leases.liveness(sessions, "survivor")
    deadline = time.monotonic() + limit
    while True:
        with sessions() as session:
            found = mine.dead(session, [owner, "survivor"])
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_an_owner_is_alive_while_its_process_runs_and_dead_once_killed(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    proc = child(database_url, "replica-a", "idle")
    try:
        with sessions() as session:
            assert leases.liveness(sessions, "survivor").dead(session, ["replica-a", "survivor"]) == set()
    finally:
        kill(proc)
    assert dead_soon(sessions, "replica-a") == {"replica-a"}  # never the asker itself


def test_a_root_edit_in_flight_when_its_sender_is_killed_goes_out_at_the_next_pass(
    database_url: str, sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    assert sender(sessions, slack, catalog, owner="first").drain_once(now=utcnow()) == 1
    root_ts = row_of(sessions, f"dep:{dep}:root").slack_ts
    add_row(sessions, f"dep:{dep}:root-update:1", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 3.0})  # its chat.update is still on the wire
    proc = child(database_url, "replica-a", "sender", slack.api_url, DEFAULT_BOT_TOKEN)
    try:
        deadline = time.monotonic() + 30
        while row_of(sessions, f"dep:{dep}:root-update:1").state is not OutboxState.SENDING:
            assert time.monotonic() < deadline, "the child never claimed the edit"
            time.sleep(0.02)
    finally:
        kill(proc)
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 0})
    held = row_of(sessions, f"dep:{dep}:root-update:1")
    assert held.lease_owner == "replica-a" and held.not_before > utcnow() + 30 * SECOND  # its lease runs on
    add_row(sessions, f"dep:{dep}:root-update:2", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    assert dead_soon(sessions, "replica-a") == {"replica-a"}

    survivor = sender(sessions, slack, catalog, owner="survivor")
    assert survivor.drain_once(now=utcnow() + SECOND) == 1  # one pass later, not when the 60 s lease ends
    newest, older = row_of(sessions, f"dep:{dep}:root-update:2"), row_of(sessions, f"dep:{dep}:root-update:1")
    assert (newest.state, older.state) == (OutboxState.SENT, OutboxState.SENT)
    assert root_ts in [c["params"]["ts"] for c in calls(slack, "chat.update") if c["ok"]]


def test_a_post_in_flight_when_its_sender_is_killed_is_looked_up_once_slack_has_it_never_posted_twice(
    database_url: str, sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    root(sessions, dep)
    # Slack is slow to store posts only: a look-up (conversations.history) would answer at once, before the post is in.
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 5.0, "latency_methods": ["chat.postMessage"]})
    proc = child(database_url, "replica-a", "sender", slack.api_url, DEFAULT_BOT_TOKEN)
    try:
        # A bound on waiting, not a timing: the child imports the bot first, which took over 30 s once in a full run
        # on two cores shared by four agents (load 10).
        deadline = time.monotonic() + 90
        while not slack.store.in_flight["chat.postMessage"]:
            assert time.monotonic() < deadline, "the child never posted the root message"
            time.sleep(0.02)
    finally:
        kill(proc)  # its post is still on the wire: Slack stores it, nobody reads the answer
    assert dead_soon(sessions, "replica-a") == {"replica-a"}
    survivor = sender(sessions, slack, catalog, owner="survivor")
    # Three passes on, past the channel's turn the dead sender reserved, Slack is still storing its post: not yet.
    first = utcnow() + 3 * SECOND
    assert survivor.drain_once(now=first) == 0
    deadline = time.monotonic() + 30
    while slack.store.in_flight["chat.postMessage"]:
        assert time.monotonic() < deadline, "Slack never finished the dead sender's post"
        time.sleep(0.02)
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 0, "latency_methods": []})
    survivor.drain_once(now=first + 11 * SECOND)  # one client timeout on: that post has ended either way
    row = row_of(sessions, f"dep:{dep}:root")
    posted = [c for c in calls(slack, "chat.postMessage") if c["ok"]]
    assert len(posted) == 1 and row.state is OutboxState.SENT, (posted, row.state, row.last_error)
    assert row.slack_ts is not None and row.lease_owner is None


def test_a_post_whose_lease_just_ran_out_is_not_posted_again_while_its_call_may_still_be_in_slack(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    # A sender that stopped renewing (no process lock tells: a name no process holds) was mid-post when its short
    # lease ran out; Slack is still storing that post when another sender finds the row due.
    dep = add_deployment(sessions)
    key = f"dep:{dep}:root"
    root(sessions, dep)
    now = utcnow()
    with sessions.begin() as s:
        row = s.scalars(select(Outbox).where(Outbox.idempotency_key == key)).one()
        row.state, row.lease_owner, row.attempts, row.not_before = OutboxState.SENDING, "gone", 1, now - SECOND
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 3.0, "latency_methods": ["chat.postMessage"]})
    client = web_client(DEFAULT_BOT_TOKEN, slack.api_url)
    metadata = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
    late = threading.Thread(target=lambda: client.chat_postMessage(channel=CH, text="root", metadata=metadata))
    late.start()  # the stopped sender's post, still on the wire
    deadline = time.monotonic() + 30
    while not slack.store.in_flight["chat.postMessage"]:
        assert time.monotonic() < deadline, "the late post never reached Slack"
        time.sleep(0.02)
    survivor = sender(sessions, slack, catalog, owner="survivor")
    assert survivor.drain_once(now=now) == 0  # its look-up misses the post Slack is still storing: not posted
    late.join()
    http("POST", f"{slack.url}/_sandbox/settings", {"latency": 0, "latency_methods": []})
    survivor.drain_once(now=now + 11 * SECOND)  # a client timeout after the lease ran out: that call has ended
    posted = [c for c in calls(slack, "chat.postMessage") if c["ok"]]
    assert len(posted) == 1 and row_of(sessions, key).state is OutboxState.SENT, posted


def test_deployments_claimed_by_a_killed_reconciler_are_claimed_at_the_next_pass(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    from bot.engine.reconciler import PassReport
    from sandbox.ecs.server import start as start_ecs
    from tests.support import make_usecases

    deps = [add_deployment(sessions, key) for key in ("catalog", "ui")]
    with start_ecs(port=0) as ecs:
        proc = child(database_url, "replica-a", "reconciler", ecs.url)
        try:
            with sessions() as session:
                leased = session.execute(select(Deployment.id, Deployment.lease_owner, Deployment.lease_until)).all()
            assert {(i, o) for i, o, _ in leased} == {(d, "replica-a") for d in deps}
            assert all(until is not None and until > utcnow() + 30 * SECOND for _, _, until in leased)
        finally:
            kill(proc)
        assert dead_soon(sessions, "replica-a") == {"replica-a"}
        survivor = make_usecases(sessions, ecs.url, example_catalog(), owner="survivor").reconciler
        assert [c.id for c in survivor._claim(survivor.d.clock(), PassReport())] == deps  # not 60 s later: now


def test_a_live_owners_claims_are_left_alone(
    database_url: str, sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    dep = add_deployment(sessions)
    with sessions.begin() as s:
        s.get_one(Deployment, dep).root_ts = "1700000000.000100"
    key = f"dep:{dep}:root-update:1"
    add_row(sessions, key, dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    proc = child(database_url, "replica-a", "idle")
    try:
        with sessions.begin() as s:
            row = s.scalars(select(Outbox).where(Outbox.idempotency_key == key)).one()
            row.state, row.lease_owner, row.not_before = OutboxState.SENDING, "replica-a", utcnow() + 60 * SECOND
        assert sender(sessions, slack, catalog, owner="survivor").drain_once(now=utcnow() + SECOND) == 0
        assert calls(slack, "chat.update") == []
    finally:
        kill(proc)


def test_two_replicas_post_into_one_channel_at_slacks_pace_not_each_at_its_own(
    database_url: str, sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    for i in range(5):
        add_row(sessions, f"note:{i}", payload={"render": "message", "text": f"note {i}"})
    # Two replicas: each its own engine (its own connections), draining on the real clock several times a second.
    engines = [make_engine(database_url) for _ in range(2)]
    replicas = [sender(session_factory(e), slack, catalog, owner=f"replica-{i}") for i, e in enumerate(engines)]
    stop = threading.Event()

    def drain(replica: OutboxSender) -> None:
        deadline = time.monotonic() + 30
        while not stop.is_set() and time.monotonic() < deadline:
            replica.drain_once()
            time.sleep(0.1)

    threads = [threading.Thread(target=drain, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    try:
        deadline = time.monotonic() + 30
        while len([c for c in calls(slack, "chat.postMessage") if c["ok"]]) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for e in engines:
            e.dispose()
    received = sorted(c["time"] for c in calls(slack, "chat.postMessage"))
    assert len(received) == 5  # each once, none refused
    gaps = [b - a for a, b in itertools.pairwise(received)]
    # About one a second, whichever replica posted (the log has when each call ended, so a slow answer can make
    # one gap look shorter than the pace; without shared pacing two replicas post ~0.01 s apart).
    assert min(gaps) >= 0.7, gaps


class TakenOverDuringItsFirstCall(MeteredWebClient):
    """A client whose first chat.update waits until another replica has taken the pass's claims over (its lease
    passed: a process stopped longer than its lease, or one that no longer renews it)."""

    def __init__(self, url: str, take_over: Callable[[], object]) -> None:
        super().__init__(token=DEFAULT_BOT_TOKEN, base_url=url, timeout=10, retry_handlers=[])
        self.take_over: Callable[[], object] | None = take_over

    def api_call(self, api_method: str, **kwargs: Any) -> Any:
        take_over = self.take_over if api_method == "chat.update" else None
        if take_over is not None:
            self.take_over = None
            take_over()
        return super().api_call(api_method, **kwargs)


def test_a_claim_handed_back_after_another_replica_took_it_over_stays_the_new_owners(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    deps = [add_deployment(sessions, key) for key in ("catalog", "ui")]
    for dep in deps:
        root(sessions, dep)
    drain_until_quiet(sender(sessions, slack, catalog, owner="first"), T0)
    for dep in deps:
        add_row(sessions, f"dep:{dep}:root-update:1", dep, kind=OutboxKind.UPDATE_ROOT, payload={"render": "root"})
    # The first edit meets a 429: the second (same method) is handed back untouched, after the takeover.
    http("POST", f"{slack.url}/_sandbox/settings", {"faults": [{"method": "chat.update", "status": 429}]})
    taker = sender(sessions, slack, catalog, owner="taker")
    late = T0 + GRACE + 10 * SECOND
    client = TakenOverDuringItsFirstCall(slack.api_url, lambda: taker._claim(late))
    OutboxSender(sessions, client, catalog, owner="slow", grace=GRACE).drain_once(now=T0 + 5 * SECOND)
    http("POST", f"{slack.url}/_sandbox/settings", {"faults": []})
    rows = [row_of(sessions, f"dep:{dep}:root-update:1") for dep in deps]
    # Both still the taker's, as it claimed them: neither reset to PENDING nor unowned by the slow sender.
    assert [(r.state, r.lease_owner, r.attempts) for r in rows] == [(OutboxState.SENDING, "taker", 2)] * 2


class Clock:
    """The senders' clock, moved by the test (a pass that takes longer than its lease, without waiting for it)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class SlowSecondCall(MeteredWebClient):
    """A client whose second call takes longer than the lease (the test's clock moves past it meanwhile); while it
    is on its way, another live replica drains."""

    def __init__(self, url: str, during: Callable[[], object]) -> None:
        super().__init__(token=DEFAULT_BOT_TOKEN, base_url=url, timeout=1, retry_handlers=[])
        self.during, self.count = during, 0

    def api_call(self, api_method: str, **kwargs: Any) -> Any:
        self.count += 1
        if self.count == 2:
            self.during()
        return super().api_call(api_method, **kwargs)


def test_a_pass_longer_than_its_lease_keeps_what_it_sent_but_has_not_recorded_yet(
    sessions: sessionmaker[Session], slack: SlackSandboxHandle, catalog: Catalog
) -> None:
    for n in (1, 2):
        text = {"render": "message", "text": f"only you {n}"}
        add_row(sessions, f"eph:{n}", kind=OutboxKind.EPHEMERAL, payload=text, user_id="U0BOB")
    clock, lease = Clock(), timedelta(seconds=4)  # more than three client timeouts (what a lease had to be before)
    plain = web_client(DEFAULT_BOT_TOKEN, slack.api_url, timeout=1)
    other = OutboxSender(sessions, plain, catalog, owner="other", grace=lease)

    def slow_call() -> None:
        # Sent, not recorded yet: eph:1's lease would end with this call; the pass is alive, so it renews it.
        renewed = T0 + lease + 2 * SECOND
        clock.now = T0 + lease + SECOND
        deadline = time.monotonic() + 5 * lease.total_seconds()
        while row_of(sessions, "eph:1").not_before < renewed and time.monotonic() < deadline:
            time.sleep(0.05)
        other.drain_once(now=clock.now)  # a live replica's pass, past the lease the first one claimed with

    slow = SlowSecondCall(slack.api_url, slow_call)
    OutboxSender(sessions, slow, catalog, owner="slow", clock=clock, grace=lease).drain_once()
    shown = [c["params"]["text"] for c in calls(slack, "chat.postEphemeral") if c["ok"]]
    assert sorted(shown) == ["only you 1", "only you 2"]  # each shown once: eph:1 was not taken over and sent again
    assert [row_of(sessions, f"eph:{n}").state for n in (1, 2)] == [OutboxState.SENT] * 2
