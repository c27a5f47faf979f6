"""Two replicas of `deploybot run` on one database with Slack slow: every chat.postMessage and chat.update takes
longer than the lease (DEPLOYBOT_LEASE_SECONDS) the sender holds its claims under.

A live sender renews the leases of the claims it has not recorded yet, so the other replica never takes over a
post (or a root edit) whose call is still on its way and sends it again. Checked from outside, on what Slack
stored: every queued message there exactly once, every root edit made once, each thread in the order it was
queued, and one post a second per channel for both replicas together.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from bench.stack import bench_channels, create_services, service_key, settle
from bot.domain.enums import DeploymentStatus, OutboxKind, OutboxState
from models import Deployment, Outbox
from sandbox.ecs.server import SandboxHandle
from sandbox.ecs.server import start as start_ecs
from sandbox.slack import workspace as ws
from sandbox.slack.server import SlackSandboxHandle
from sandbox.slack.server import start as start_slack
from tests.reliability.conftest import backend, scale
from tests.reliability.figures import record
from tests.reliability.fleet import Replica, Slack, metadata_key, start_replicas

SPEED = 60.0  # ECS seconds per real second
POLL = 1.0
LEASE_SECONDS = scale(1, 2)  # the sender's lease on a claimed row, renewed every third of it while its pass runs
# Every chat.postMessage and chat.update takes SLOW to SLOW + SPREAD seconds, drawn per call (Slack stores the post
# at its end, so a post begun later may be stored first).
SLOW, SPREAD = scale(2, 4), scale(1, 2)
DEPLOYMENTS = scale(2, 4)
CHANNELS = scale(1, 2)  # two deployments a channel: both replicas post into each
SLOW_METHODS = ("chat.postMessage", "chat.update")
# Rolling and blue/green without approvals: narrated to the end with nobody clicking.
KINDS = ("strategy: rolling", "strategy: bluegreen")
CATALOG = """defaults:
  region: us-east-1
  cluster: unicorn-watch
  container: bench
  deployers: [U0ALICE]
  bake: 1m
services:
"""
# Each message costs SLOW per call and the replicas' senders post one at a time: generous for a loaded machine.
DRAIN_LIMIT = 60.0 + 40 * (SLOW + SPREAD) * DEPLOYMENTS / 2


@pytest.fixture
def ecs() -> Iterator[SandboxHandle]:
    with start_ecs(port=0, speed=SPEED) as handle:
        create_services(handle.url, DEPLOYMENTS)
        settle(handle)
        yield handle


@pytest.fixture
def stand_in() -> Iterator[SlackSandboxHandle]:
    with start_slack(port=0) as handle:
        yield handle


@pytest.fixture
def replicas(
    tmp_path: Path, database_url: str, engine: Engine, ecs: SandboxHandle, stand_in: SlackSandboxHandle
) -> Iterator[list[Replica]]:
    body = CATALOG + "".join(f"  {service_key(i)}:\n    {KINDS[i % len(KINDS)]}\n" for i in range(DEPLOYMENTS))
    catalog = tmp_path / "services.yml"
    catalog.write_text(body, encoding="utf-8")
    settings = {"DEPLOYBOT_LEASE_SECONDS": str(LEASE_SECONDS)}
    fleet = start_replicas(2, tmp_path, database_url, catalog, stand_in.api_url, ecs.url, POLL, settings)
    stand_in.store.settings.latency = SLOW  # before the work, like a slow network: the post is stored at the end
    stand_in.store.settings.latency_spread = SPREAD
    stand_in.store.settings.latency_methods = frozenset(SLOW_METHODS)
    try:
        yield fleet
    finally:
        for replica in fleet:
            replica.stop()


@dataclass
class Seen:
    """What Slack and the database hold once the deployments ended and the outbox drained."""

    deployments: list[Deployment]
    outbox: list[Outbox]
    messages: list[dict[str, Any]]  # every message in the test's channels, in Slack's order
    edits: int  # chat.update calls Slack carried out
    gaps: list[float]  # seconds between two posts stored in one channel (by their ts)


def _read(sessions: sessionmaker[Session], stand_in: SlackSandboxHandle, channels: list[str]) -> Seen:
    with sessions() as session:
        deployments = list(session.scalars(select(Deployment).order_by(Deployment.id)))
        outbox = list(session.scalars(select(Outbox).order_by(Outbox.id)))
    snapshot = stand_in.store.snapshot()["channels"]
    messages = [m for c in channels for m in snapshot.get(c, [])]
    gaps = []
    for channel in channels:
        times = sorted(float(m["ts"]) for m in snapshot.get(channel, []))
        gaps += [b - a for a, b in itertools.pairwise(times)]
    edits = sum(1 for c in stand_in.store.calls_for("chat.update") if c["ok"])
    return Seen(deployments, outbox, messages, edits, gaps)


def _drained(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        deps = list(session.scalars(select(Deployment)))
        busy = session.scalars(
            select(Outbox.id).where(Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING)))
        ).first()
    return len(deps) == DEPLOYMENTS and not any(d.status.is_active for d in deps) and busy is None


def _in_flight(stand_in: SlackSandboxHandle) -> int:
    """Slow calls being served now."""
    with stand_in.store.lock:
        return sum(stand_in.store.in_flight[m] for m in SLOW_METHODS)


def _problems(seen: Seen) -> dict[str, list[str]]:
    """Lost, duplicated and out-of-order messages, each named."""
    keys = Counter(metadata_key(m) for m in seen.messages)
    posts = [r for r in seen.outbox if r.kind is OutboxKind.POST and not r.user_id]
    # Every root edit the outbox sent, not folded into a newer one: each is one chat.update (a taken-over one, two).
    edits = [r for r in seen.outbox if r.kind is OutboxKind.UPDATE_ROOT and r.last_error is None]
    out_of_order = []
    for dep in seen.deployments:
        queued = [r.idempotency_key for r in posts if r.deployment_id == dep.id and r.in_thread]
        thread = [
            metadata_key(m) for m in seen.messages if m.get("thread_ts") == dep.root_ts and m["ts"] != dep.root_ts
        ]
        if thread != queued:
            out_of_order.append(f"{dep.service_key}: {thread} ≠ {queued}")
    failed = [d for d in seen.deployments if d.status is not DeploymentStatus.SUCCEEDED]
    unsent = [r for r in seen.outbox if r.state is not OutboxState.SENT]
    return {
        "not succeeded": [f"{d.service_key}: {d.status.value}" for d in failed],
        "not sent": [f"{r.idempotency_key}: {r.state.value} {r.last_error}" for r in unsent],
        "lost": [r.idempotency_key for r in posts if r.idempotency_key not in keys],
        "duplicated": [f"{k} ×{n}" for k, n in keys.items() if k and n > 1],
        "edits made twice": [f"{seen.edits} chat.update for {len(edits)} root edits"][: seen.edits != len(edits)],
        "out of order": out_of_order,
    }


def test_two_replicas_with_slack_slower_than_the_lease_send_each_message_once(
    replicas: list[Replica], stand_in: SlackSandboxHandle, sessions: sessionmaker[Session], database_url: str
) -> None:
    slack, channels = Slack(stand_in), bench_channels(CHANNELS)
    per_channel = max(1, DEPLOYMENTS // CHANNELS)

    def deploy(i: int) -> None:  # round-robin: each replica queues the root post of half the deployments
        channel = channels[(i // per_channel) % len(channels)]
        slack.command(replicas[i % len(replicas)], ws.ALICE, channel, f"{service_key(i)} image=:2.{i}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(deploy, range(DEPLOYMENTS)))
    deadline, overlap = time.monotonic() + DRAIN_LIMIT, 0
    while not _drained(sessions):
        tails = "\n".join(f"{r.name}:\n{r.tail(5)}" for r in replicas)
        assert time.monotonic() < deadline, f"not drained in {DRAIN_LIMIT:.0f} s\n{tails}"
        overlap = max(overlap, _in_flight(stand_in))
        time.sleep(0.2)
    seen = _read(sessions, stand_in, channels)
    problems = _problems(seen)
    record(
        f"2 replicas, Slack {SLOW}–{SLOW + SPREAD} s per post and edit (lease {LEASE_SECONDS} s)",
        backend=backend(database_url),
        deployments=DEPLOYMENTS,
        requests=len(slack.replies),
        faults=f"{sum(1 for c in stand_in.store.calls if c['method'] in SLOW_METHODS)} calls of {SLOW}–{SLOW + SPREAD} s",
        lost=len(problems["lost"]) + len(problems["not sent"]),
        duplicated=len(problems["duplicated"]) + len(problems["edits made twice"]),
        applied_twice=0,
        max_ack_s=max(reply.seconds for _, reply in slack.replies),
        post_gap_min_s=min(seen.gaps),
        post_gap_median_s=statistics.median(seen.gaps),
        slow_calls_at_once=overlap,  # > 1: both replicas' senders were in a slow call together (one sends serially)
        command="make soak (test_slow_slack.py)",
    )
    assert all(reply.status == 200 for _, reply in slack.replies), slack.replies
    assert not any(problems.values()), problems
    # Slack's one post a second per channel, both replicas together (a post's ts is when Slack stored it, at the
    # end of its slow call; the next one's turn counts from when that call was answered, after the store).
    assert min(seen.gaps) >= 1.0, sorted(seen.gaps)[:5]
    errors = [line for r in replicas for line in r.errors()]
    assert not errors, errors[:3]
