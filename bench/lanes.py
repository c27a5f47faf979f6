"""Sender lanes against one thread (DEPLOYBOT_SLACK_LANES=1, the way before lanes), side by side in one run.

Two figures, each with the Slack stand-in answering at once and with 0.1 s added to every call (real Slack answers
in 100-300 ms):
- messages/s delivered at Slack's pace to 200 channels: `bench.outbox`'s backlog (1,000 deployments over 200
  channels, 20 replies waiting each: 20,000 posts; roots posted in the stand-in first, root edits left out), drained
  by the real
  sender (one post per second per channel, the stand-in enforcing it) every 0.25 s as the scheduler runs it;
- ECS change → root updated p95 at 100 and 1,000 live (`bench.felt`, the change only: no clicks).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select, update

from bench import felt
from bench.outbox import database, seed
from bench.probes import Row, percentile
from bench.stack import bench_catalog, running_stack
from bot.db.sessions import session_factory
from bot.domain.enums import OutboxKind, OutboxState
from bot.scheduler import NOTIFY_SECONDS
from bot.slack.clients import web_client
from bot.slack.sender import OutboxSender
from models import Deployment, Outbox
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle
from sandbox.slack.server import start as start_slack

LANES = (1, 8)  # one thread (before) and the default
LATENCIES = (0.0, 0.1)
CHANNELS = 200


@dataclass
class Paced:
    lanes: int
    latency: float
    sent: int
    seconds: float
    channels: int  # channels that got a post
    refused: int  # 429s the stand-in answered (the sender's pace should leave none)

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds


@contextmanager
def standin() -> Iterator[SlackSandboxHandle]:
    """The Slack stand-in with `bench.outbox`'s 200 channels in its workspace."""
    for i in range(CHANNELS):
        cid = f"CBENCH{i:04d}"
        ws.ALL_CHANNELS.setdefault(cid, ws.Channel(cid, f"bench-o{i}", (*ws.HUMAN_IDS, ws.BOT_USER_ID)))
    with start_slack(port=0, bot_token=DEFAULT_BOT_TOKEN) as slack:
        yield slack


def paced(url: str | None, lanes: int, latency: float, seconds: float) -> Paced:
    """The real sender at Slack's pace over `bench.outbox`'s backlog for `seconds`."""
    with database(url) as engine, standin() as slack:
        sessions = session_factory(engine)
        seed(sessions, channels=CHANNELS, per_channel=5, replies=20)
        client = web_client(DEFAULT_BOT_TOKEN, slack.api_url)
        with sessions.begin() as s:  # each root in the stand-in, so that replies and edits have a thread
            for dep_id, channel in s.execute(select(Deployment.id, Deployment.channel_id)).all():
                ts = client.chat_postMessage(channel=channel, text=f"deployment #{dep_id}")["ts"]
                s.execute(update(Deployment).where(Deployment.id == dep_id).values(root_ts=ts))
            # Posts only: the root edits (no per-channel pace) would take the first passes' batches.
            s.execute(update(Outbox).where(Outbox.kind == OutboxKind.UPDATE_ROOT).values(state=OutboxState.SENT))
        slack.store.settings.rate_limit, slack.store.settings.latency = True, latency
        catalog = bench_catalog(5 * CHANNELS, approvals=False)
        sender = OutboxSender(sessions, client, catalog, owner="bench", lanes=lanes)
        before = len(slack.store.calls)
        sent, started = 0, time.monotonic()
        while time.monotonic() - started < seconds:
            begun = time.monotonic()
            sent += sender.drain_once()
            time.sleep(max(0.0, begun + NOTIFY_SECONDS - time.monotonic()))
        wall = time.monotonic() - started
        calls = [c for c in slack.store.calls[before:] if c.get("method") == "chat.postMessage"]
        reached = {str(c["params"].get("channel")) for c in calls if c.get("ok")}
        refused = sum(1 for c in calls if c.get("status") == 429)
    return Paced(lanes, latency, sent, wall, len(reached), refused)


def lanes_rows(backend: str, url: str | None, quick: bool, notes: list[str]) -> list[Row]:
    """messages/s at Slack's pace and change → root p95, lanes=1 against lanes=8, at both latencies."""
    rows: list[Row] = []
    for latency in LATENCIES:
        for lanes in LANES:
            p = paced(url, lanes, latency, 3.0 if quick else 10.0)
            notes.append(
                f"lanes={lanes}, latency {latency:g} s: {p.sent} messages in {p.seconds:.1f} s to {p.channels} "
                f"channels, {p.refused} answered 429"
            )
            rows.append(Row(f"lanes={lanes}, +{latency:g} s/call: messages/s at Slack's pace", p.per_second, "/s"))
    poll = 2.0 if quick else 5.0
    for count in (100,) if quick else (100, 1000):
        for latency in LATENCIES:
            for lanes in LANES:
                started = time.monotonic()
                with running_stack(backend, url, count, create=False, approvals=True, poll_seconds=poll) as stack:
                    r = felt.felt(stack, count, clicks=False, quiet=min(2.0, poll / 2), lanes=lanes, latency=latency)
                notes += [f"lanes={lanes}, +{latency:g} s/call: {n}" for n in felt.felt_notes(r)]
                print(f"  felt {count} live, lanes={lanes}, +{latency:g} s: {time.monotonic() - started:.0f} s")
                p95 = percentile(r.stage_to_root, 95) if r.stage_to_root else float("nan")
                metric = f"lanes={lanes}, +{latency:g} s/call: change → root p95, {count} live (poll {poll:g} s)"
                rows.append(Row(metric, p95, "s", poll + 1.0 if count <= 100 else None))  # 1,000: see README
    return rows
