"""The measured phases: slash-command acks over HTTP, request_deploy, reconcile passes, draining the outbox."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier
from sqlalchemy import func, select, update

from bench.probes import Meters, SqlCounter, percentile
from bench.stack import PREFIX, Stack
from bot.domain.enums import ACTIVE_STATUSES, ActorSource, OutboxKind, OutboxState
from bot.domain.grammar import parser as grammar
from bot.engine.answers import Actor
from bot.slack.clients import web_client
from bot.slack.sender import OutboxSender
from models import Deployment, Outbox
from sandbox.slack import payloads
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET

# What people type, in turn: help, status, a grammar error (answered in the ack itself), a real deploy.
# Only one deployment per service may be active, so after the first of each service the deploys are refused
# "busy" (in the listener, after the ack), which is what a busy channel looks like.
ACK_MIX = ("help", "status", "catalog canary 150%", "@deploy")
ACK_DEPLOYS = ("orders", "notifications bluegreen", "catalog canary 10%", "ui bluegreen image=:1.3.0")
WARMUP_REQUESTS = 5  # first requests pay for lazy imports and connection pools; not counted


@dataclass
class AckResult:
    latencies_ms: list[float]
    by_kind: dict[str, list[float]]
    failures: list[str]

    @property
    def p50(self) -> float:
        return percentile(self.latencies_ms, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies_ms, 99)


def _command_texts(count: int) -> Iterator[tuple[str, str]]:
    deploys = 0
    for i in range(count):
        kind = ACK_MIX[i % len(ACK_MIX)]
        if kind == "@deploy":
            yield "deploy", ACK_DEPLOYS[deploys % len(ACK_DEPLOYS)]
            deploys += 1
        else:
            yield ("error" if "150%" in kind else kind), kind


class SlackCaller:
    """Sends `/deploy …` to the bot's /slack/events exactly as Slack does: form body, HMAC-signed, over HTTP."""

    def __init__(self, stack: Stack, port: int | None = None, timeout: float = 10.0) -> None:
        self.stack = stack
        self.port = port or stack.bot.port
        self.timeout = timeout
        self.verifier = SignatureVerifier(DEFAULT_SIGNING_SECRET)
        channel = ws.find_channel(ws.DEPLOYS_CHANNEL)
        assert channel is not None
        self.channel = channel

    def body(self, text: str, user: str = ws.ALICE) -> bytes:
        store = self.stack.slack.store
        # Response URLs and trigger ids issued by the stand-in, so the listeners' answers land somewhere real.
        rid = store.issue_response_url(user, self.channel.id, None, False)
        fields = payloads.command_fields(
            user,
            self.channel,
            "/deploy",
            text,
            response_url=f"{self.stack.slack.url}/_sandbox/response/{rid}",
            trigger_id=store.issue_trigger(user),
        )
        return urlencode(fields).encode()

    def send(self, text: str) -> tuple[float, int, str]:
        """(milliseconds from the first byte sent to the whole response read, status, body)."""
        return self.post(self.body(text))

    def post_form(self, fields: dict[str, str]) -> tuple[float, int, str]:
        """POST any form (e.g. `payload=` of a click), signed; like `send`."""
        return self.post(urlencode(fields).encode())

    def post(self, body: bytes) -> tuple[float, int, str]:
        """POST a signed body to the bot's /slack/events."""
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body) or "",
        }
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            started = time.perf_counter()
            conn.request("POST", "/slack/events", body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read().decode()
            elapsed = (time.perf_counter() - started) * 1000
        finally:
            conn.close()
        return elapsed, resp.status, answer


def measure_acks(stack: Stack, count: int, stop: threading.Event | None = None) -> AckResult:
    """`count` slash commands one after another (or until `stop` is set); the bot's HTTP answer time of each."""
    caller = SlackCaller(stack)
    for _ in range(WARMUP_REQUESTS):
        caller.send("help")
    result = AckResult([], {}, [])
    for kind, text in _command_texts(count):
        if stop is not None and stop.is_set():
            break
        ms, status, body = caller.send(text)
        if status != 200:
            result.failures.append(f"{text!r}: HTTP {status} {body[:80]}")
        elif kind == "error" and "150" not in body and "%" not in body:
            result.failures.append(f"{text!r}: the ack did not carry the grammar error: {body[:80]}")
        result.latencies_ms.append(ms)
        result.by_kind.setdefault(kind, []).append(ms)
    return result


def wait_quiet(stack: Stack, quiet: float = 1.0, limit: float = 60.0) -> float:
    """Wait until the stand-in has seen nothing new for `quiet` seconds (the listeners finished their work)."""
    started = time.monotonic()
    last, since = stack.slack.store.version, time.monotonic()
    while time.monotonic() - started < limit:
        time.sleep(0.1)
        version = stack.slack.store.version
        if version != last:
            last, since = version, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return time.monotonic() - started


# request_deploy ---------------------------------------------------------------------------------------------------
@dataclass
class RequestResult:
    latencies_ms: list[float]
    wall: float
    started: int
    refused: list[str]
    ecs: dict[str, tuple[float, int]] = field(default_factory=dict)
    sandbox: dict[str, tuple[float, int]] = field(default_factory=dict)
    statements: int = 0


def request_deploys(
    stack: Stack, meters: Meters, sql: SqlCounter, workers: int, channels: tuple[str, ...] = (ws.DEPLOYS_CHANNEL,)
) -> RequestResult:
    """`/deploy bench-NNNN image=:2.0` for every bench service through the engine, `workers` at a time
    (Bolt runs listeners on a pool, so concurrent requests are the realistic case)."""
    usecases, catalog = stack.ctx.usecases, stack.ctx.catalog
    where = {key: channels[i % len(channels)] for i, key in enumerate(stack.services)}  # narrated where asked
    latencies: list[float] = []
    refused: list[str] = []
    lock = threading.Lock()

    def one(key: str) -> None:
        command = grammar.parse(f"{key} image=:2.0", catalog)
        actor = Actor(user_id=ws.ALICE, channel_id=where[key], team_id=ws.TEAM_ID, source=ActorSource.COMMAND)
        started = time.perf_counter()
        answer = usecases.handle(actor, command)
        ms = (time.perf_counter() - started) * 1000
        with lock:
            latencies.append(ms)
            if answer.deployment_id is None or not answer.ok:
                refused.append(f"{key}: {answer.text[:100]}")

    statements = sql.total()
    with meters.delta() as spent:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, stack.services))
        wall = time.perf_counter() - started
    ecs = {k.removeprefix("ecs:"): v for k, v in spent.items() if k.startswith("ecs:")}
    sandbox = {k.removeprefix("sandbox:"): v for k, v in spent.items() if k.startswith("sandbox:")}
    return RequestResult(
        latencies, wall, len(latencies) - len(refused), refused, ecs, sandbox, sql.total() - statements
    )


# Reconcile passes -------------------------------------------------------------------------------------------------
@dataclass
class PassTiming:
    seconds: float
    claimed: int
    described: int
    events: int
    errors: int
    statements: int
    parts: dict[str, tuple[float, int]]
    shapes: dict[str, int]


@dataclass
class ReconcileResult:
    passes: list[PassTiming]
    finished: bool
    remaining: int
    sandbox_advance: float

    @property
    def first(self) -> float:
        return self.passes[0].seconds if self.passes else float("nan")

    @property
    def mean(self) -> float:
        return sum(p.seconds for p in self.passes) / len(self.passes) if self.passes else float("nan")

    @property
    def worst(self) -> float:
        return max((p.seconds for p in self.passes), default=float("nan"))

    @property
    def total(self) -> float:
        return sum(p.seconds for p in self.passes)


def active_bench(stack: Stack) -> int:
    with stack.ctx.sessions() as session:
        stmt = (
            select(func.count())
            .select_from(Deployment)
            .where(Deployment.status.in_(ACTIVE_STATUSES), Deployment.service_key.startswith(PREFIX))
        )
        return int(session.scalar(stmt) or 0)


def reconcile_until_done(
    stack: Stack, meters: Meters, sql: SqlCounter, *, step: float, max_passes: int, deadline: float
) -> ReconcileResult:
    """reconcile_once(), then move the sandbox clock `step` seconds, until no bench deployment is active."""
    reconciler = stack.ctx.usecases.reconciler
    passes: list[PassTiming] = []
    advance = 0.0
    remaining = active_bench(stack)
    for _ in range(max_passes):
        statements, shapes = sql.total(), sql.shapes()
        with meters.delta() as parts:
            started = time.perf_counter()
            report = reconciler.reconcile_once()
            seconds = time.perf_counter() - started
        after = sql.shapes()
        passes.append(
            PassTiming(
                seconds,
                report.claimed,
                report.described,
                report.events,
                len(report.errors),
                sql.total() - statements,
                parts,
                {k: v - shapes.get(k, 0) for k, v in after.items() if v - shapes.get(k, 0)},
            )
        )
        remaining = active_bench(stack)
        if remaining == 0 or time.monotonic() > deadline:
            break
        started = time.perf_counter()
        stack.ecs.sandbox.advance(step)
        advance += time.perf_counter() - started
    return ReconcileResult(passes, remaining == 0, remaining, advance)


# Draining the outbox ----------------------------------------------------------------------------------------------
@dataclass
class DrainResult:
    sent: int
    passes: int
    wall: float
    queued_posts: int
    queued_updates: int
    left: int
    parts: dict[str, tuple[float, int]]
    statements: int

    @property
    def queued(self) -> int:
        """Messages waiting when the drain began."""
        return self.queued_posts + self.queued_updates

    def ms_per_message(self, minus: float = 0.0) -> float:
        return (self.wall - minus) * 1000 / self.sent if self.sent else float("nan")


def outbox_counts(stack: Stack) -> tuple[int, int, int]:
    """(pending posts, pending root updates, rows not yet SENT/FAILED)."""
    with stack.ctx.sessions() as session:
        rows = session.execute(
            select(Outbox.kind, func.count())
            .where(Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING)))
            .group_by(Outbox.kind)
        ).all()
    counts: dict[Any, int] = {kind: int(n) for kind, n in rows}
    return counts.get(OutboxKind.POST, 0), counts.get(OutboxKind.UPDATE_ROOT, 0), sum(counts.values())


def build_sender(stack: Stack, post_interval: float) -> OutboxSender:
    client = web_client(DEFAULT_BOT_TOKEN, stack.slack.api_url)
    return OutboxSender(
        stack.ctx.sessions,
        client,
        stack.ctx.catalog,
        clock=stack.ctx.clock,
        owner="bench",
        post_interval=post_interval,
        update_interval=post_interval,
    )


def drain(
    stack: Stack,
    sender: OutboxSender,
    meters: Meters,
    sql: SqlCounter,
    *,
    budget: float,
    max_passes: int | None = None,
    on_pass: Callable[[], None] | None = None,
) -> DrainResult:
    """drain_once() until the outbox is empty, `budget` seconds have gone or `max_passes` passes ran."""
    posts, updates, _ = outbox_counts(stack)
    statements = sql.total()
    sent = passes = idle = 0
    with meters.delta() as parts:
        started = time.perf_counter()
        while time.perf_counter() - started < budget:
            got = sender.drain_once()
            passes += 1
            sent += got
            idle = idle + 1 if got == 0 else 0
            if on_pass is not None:
                on_pass()
            if idle >= 3 or passes == max_passes:  # idle: nothing due any more (or only rows waiting on a back-off)
                break
        wall = time.perf_counter() - started
    left = outbox_counts(stack)[2]
    return DrainResult(sent, passes, wall, posts, updates, left, parts, sql.total() - statements)


def post_roots(stack: Stack) -> int:
    """Post every pending root message to the stand-in and record it as the sender would (root_ts, SENT).

    A real sender posts one message per channel per pass, so 1,000 roots in one channel take 1,000 passes; the
    state that follows (roots known, thread replies waiting) is where every real backlog ends up. This reaches it
    directly, so the steady-state drain below is measured in that state within the time budget.
    """
    client = web_client(DEFAULT_BOT_TOKEN, stack.slack.api_url)
    with stack.ctx.sessions() as session:
        rows = session.execute(
            select(Outbox.id, Outbox.deployment_id, Outbox.channel_id).where(
                Outbox.idempotency_key.like("dep:%:root"), Outbox.state == OutboxState.PENDING
            )
        ).all()
    for row_id, dep_id, channel in rows:
        ts = client.chat_postMessage(channel=channel, text=f"deployment #{dep_id} (bench root)")["ts"]
        with stack.ctx.sessions() as session, session.begin():
            session.execute(update(Deployment).where(Deployment.id == dep_id).values(root_ts=ts, channel_id=channel))
            session.execute(update(Outbox).where(Outbox.id == row_id).values(state=OutboxState.SENT, slack_ts=ts))
    return len(rows)


def paced_drain(stack: Stack, seconds: float) -> tuple[int, int]:
    """The real sender at Slack's pace (1 post/s per channel, the stand-in enforcing it), one drain_once a second
    as the scheduler runs it (back to back when a pass takes longer): (messages sent, channels they went to)."""
    sender = build_sender(stack, 1.0)
    stack.slack.store.settings.rate_limit = True
    before = len(stack.slack.store.calls)
    sent = 0
    try:
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            begun = time.monotonic()
            sent += sender.drain_once()
            time.sleep(max(0.0, begun + 1.0 - time.monotonic()))
    finally:
        stack.slack.store.settings.rate_limit = False
    calls = stack.slack.store.calls[before:]
    channels = {str(c.get("params", {}).get("channel")) for c in calls if c.get("method") == "chat.postMessage"}
    return sent, len(channels)
