"""Acks under load, against the naive way: 50 signed requests/s with ECS slow, and 100 at once with ECS throttled.

The naive way is what the bot did before issue P3: a Bolt app with Bolt's defaults (its listener pool of 5
threads) whose listeners ack and then do the ECS and database work in the same thread. It runs here on the same
use cases, database, ECS sandbox and Slack stand-in, behind a threading WSGI server, so only the listeners differ.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bench.child import child_bot
from bench.felt import Live, click
from bench.phases import SlackCaller
from bench.probes import percentile
from bench.seed import APPROVAL, create_services, register_families, seed_live
from bench.stack import Stack, service_key
from bot.domain.enums import ActorSource
from bot.domain.grammar import parser as grammar
from bot.engine.answers import Actor
from bot.slack.blocks.root import parse_button_value
from bot.slack.clients import web_client
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET

SLOW_ECS_S = 0.5  # every ECS call takes at least this long
WARMUP = 5  # requests before the measured ones, not counted


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


class _Quiet(WSGIRequestHandler):
    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def naive_bot(stack: Stack) -> Iterator[int]:
    """The naive listeners (Bolt defaults: 5 threads, work after ack in the listener) on a port of their own."""
    usecases, catalog = stack.ctx.usecases, stack.ctx.catalog
    executor = ThreadPoolExecutor(max_workers=5)  # what Bolt builds when given none; ours, so it can be joined
    app = App(
        token=DEFAULT_BOT_TOKEN,
        signing_secret=DEFAULT_SIGNING_SECRET,
        client=web_client(DEFAULT_BOT_TOKEN, stack.slack.api_url),
        token_verification_enabled=False,
        listener_executor=executor,
    )

    @app.command("/deploy")
    def deploy(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        actor = Actor(command["user_id"], command["channel_id"], ws.TEAM_ID, ActorSource.COMMAND)
        try:
            respond(usecases.handle(actor, grammar.parse(command.get("text", ""), catalog)).text)
        except grammar.GrammarError as exc:
            respond(str(exc))

    @app.action("deploy_approve")
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        dep_id, hook = parse_button_value(body["actions"][0]["value"])
        actor = Actor(body["user"]["id"], body["channel"]["id"], ws.TEAM_ID, ActorSource.BUTTON)
        respond(usecases.decisions.approve(actor, dep_id, hook).text)

    server = make_server("127.0.0.1", 0, SlackRequestHandler(app), _ThreadingServer, _Quiet)
    thread = threading.Thread(target=server.serve_forever, name="naive-bolt", daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        # What the naive listeners still have queued is dropped; the few at work finish before the database goes.
        executor.shutdown(wait=True, cancel_futures=True)


@contextmanager
def slow_ecs(stack: Stack, seconds: float = SLOW_ECS_S) -> Iterator[None]:
    """Every ECS call answers after `seconds` (the sandbox serves each request on its own thread)."""
    sandbox = stack.ecs.sandbox
    original = sandbox.call

    def call(operation: str, raw: bytes, caller: str | None = None) -> tuple[int, bytes]:
        time.sleep(seconds)
        return original(operation, raw, caller)

    sandbox.call = call  # type: ignore[method-assign]
    try:
        yield
    finally:
        sandbox.call = original  # type: ignore[method-assign]


@contextmanager
def throttled_ecs(stack: Stack) -> Iterator[None]:
    """Every ECS call answers ThrottlingException."""
    stack.ecs.sandbox.throttle.set_fault("*", "ThrottlingException", 1.0)
    try:
        yield
    finally:
        stack.ecs.sandbox.throttle.set_fault("*", "ThrottlingException", 0.0)


def create_plain_services(stack: Stack, keys: list[str]) -> None:
    """Services with nothing deploying yet (what `/deploy <key> image=:2.0` then starts)."""
    create_services(stack, keys)


@dataclass
class Sent:
    ms: float
    status: int
    rid: str | None = None  # the response_url the request carried
    in_ack: bool = False  # the answer came in the ack itself (a grammar error)


@dataclass
class LoadResult:
    label: str
    sent: list[Sent] = field(default_factory=list)
    answered: int = 0  # response_urls used at least once when the phase ended
    wall: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for s in self.sent if s.status == 200)

    def p(self, q: float) -> float:
        return percentile([s.ms for s in self.sent], q)


def _command(caller: SlackCaller, text: str) -> Sent:
    store, stack = caller.stack.slack.store, caller.stack
    rid = store.issue_response_url(ws.ALICE, caller.channel.id, None, False)
    from urllib.parse import urlencode

    from sandbox.slack import payloads

    fields = payloads.command_fields(
        ws.ALICE,
        caller.channel,
        "/deploy",
        text,
        response_url=f"{stack.slack.url}/_sandbox/response/{rid}",
        trigger_id=store.issue_trigger(ws.ALICE),
    )
    try:
        ms, status, body = caller.post(urlencode(fields).encode())
    except OSError:
        return Sent(caller.timeout * 1000, 0, rid)
    return Sent(ms, status, rid, in_ack=status == 200 and bool(body.strip()))


def open_loop(jobs: list[Callable[[], Sent]], rate: float, label: str) -> LoadResult:
    """Start job i at i/rate seconds whatever the answers (Slack does not wait for the bot either)."""
    result = LoadResult(label)
    lock = threading.Lock()
    started = time.monotonic()

    def run(job: Callable[[], Sent]) -> None:
        sent = job()
        with lock:
            result.sent.append(sent)

    with ThreadPoolExecutor(max_workers=128) as pool:
        for i, job in enumerate(jobs):
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            pool.submit(run, job)
    result.wall = time.monotonic() - started
    return result


def mix(caller: SlackCaller, keys: Iterator[str], count: int) -> list[Callable[[], Sent]]:
    """help, status, a grammar error and a real deploy of a fresh service (which calls ECS), in turn."""
    texts = []
    for i in range(count):
        kind = i % 4
        texts.append(("help", "status", "catalog canary 150%")[kind] if kind < 3 else f"{next(keys)} image=:2.0")
    return [functools.partial(_command, caller, t) for t in texts]


def answered(stack: Stack, result: LoadResult, wait: float) -> int:
    """How many requests were answered through their response_url, waiting up to `wait` s for the last ones."""
    store = stack.slack.store
    deadline = time.monotonic() + wait
    rids = [s.rid for s in result.sent if s.rid and not s.in_ack]
    in_ack = len(result.sent) - len(rids)
    done = in_ack
    while time.monotonic() < deadline:
        done = in_ack + sum(1 for rid in rids if rid in store.response_urls and store.response_urls[rid].uses > 0)
        if done == len(result.sent):
            break
        time.sleep(0.5)
    result.answered = done
    return done


def burst(stack: Stack, port: int | None, keys: list[str], roots: list[Live], label: str) -> LoadResult:
    """len(keys) `/deploy` and len(roots) Approve clicks, all at once, while every ECS call is throttled."""
    caller = SlackCaller(stack, port, timeout=10.0)
    store = stack.slack.store
    jobs: list[Callable[[], Sent]] = [functools.partial(_command, caller, f"{k} image=:2.0") for k in keys]

    def clicking(live: Live) -> Sent:
        before = set(store.response_urls)
        at, status = click(stack, live, port=port)
        rid = next(iter(set(store.response_urls) - before), None)
        return Sent((time.time() - at) * 1000, status, rid)

    jobs += [functools.partial(clicking, r) for r in roots]
    result = LoadResult(label)
    started = time.monotonic()
    barrier = threading.Barrier(len(jobs))

    def run(job: Callable[[], Sent]) -> Sent:
        barrier.wait()
        return job()

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        result.sent = list(pool.map(run, jobs))
    result.wall = time.monotonic() - started
    return result


def load_notes(r: LoadResult) -> str:
    """One line: how many acked 200, latency percentiles, answered through response_url."""
    codes: dict[int, int] = {}
    for s in r.sent:
        codes[s.status] = codes.get(s.status, 0) + 1
    share = r.ok * 100 / max(1, len(r.sent))
    return (
        f"{r.label}: {len(r.sent)} requests in {r.wall:.1f} s, HTTP 200 {r.ok} ({share:.0f} %)"
        f", statuses {dict(sorted(codes.items()))}, ack p50 {r.p(50):.0f} / p95 {r.p(95):.0f} / p99 {r.p(99):.0f} ms"
        f", answered {r.answered}/{len(r.sent)} (in the ack {sum(s.in_ack for s in r.sent)}, the rest through "
        "their response_url)"
    )


@dataclass
class AckPhases:
    ours_rate: LoadResult
    naive_rate: LoadResult | None  # None: not run (--quick)
    ours_burst: LoadResult
    naive_burst: LoadResult | None


def prepare_roots(stack: Stack, count: int) -> list[Live]:
    """`count` deployments waiting for approval, their root messages showing the buttons in the stand-in."""
    from bench.felt import post_roots
    from bench.phases import build_sender

    seeded = seed_live(
        stack, [service_key(i) for i in range(count)], [ws.DEPLOYS_CHANNEL], specs=APPROVAL, moving_share=0
    )
    roots = post_roots(stack, seeded.ids)
    sender = build_sender(stack, 0.0)
    for _ in range(3):
        stack.ctx.usecases.reconciler.reconcile_once()
    for _ in range(50):
        if sender.drain_once() == 0:
            break
    return roots


def services_needed(rate: float, seconds: float, burst_each: int) -> int:
    """How many bench services `ack_phases` uses (the stack's catalog must have them)."""
    return 4 * burst_each + 2 * (int(rate * seconds / 4) + 1)


def ack_phases(stack: Stack, rate: float, seconds: float, burst_each: int, naive: bool = True) -> AckPhases:
    """The four runs: ours and naive at `rate`/s for `seconds` with ECS slow; ours and naive in one burst."""
    # The bot answers from a process of its own, as in production: the 128 sender threads, the sandbox and the
    # stand-in of this process do not share its interpreter lock. It starts (seconds of imports) while the
    # services are prepared. The naive app stays here: what fails it is its 5 listener threads waiting on ECS.
    with child_bot(stack, stack.database_url, len(stack.services), True) as bot:
        register_families(stack)
        roots = prepare_roots(stack, 2 * burst_each)
        per_run = int(rate * seconds / 4) + 1
        keys = [service_key(2 * burst_each + i) for i in range(2 * per_run + 2 * burst_each)]
        create_plain_services(stack, keys)
        ours_keys, naive_keys = iter(keys[:per_run]), iter(keys[per_run : 2 * per_run])
        burst_keys = keys[2 * per_run :]
        with naive_bot(stack) as port:
            for _ in range(WARMUP):  # the child's first requests pay for lazy imports and connection pools
                SlackCaller(stack, bot.port).send("help")
            with slow_ecs(stack):
                jobs = mix(SlackCaller(stack, bot.port), ours_keys, int(rate * seconds))
                ours = open_loop(jobs, rate, "ours, ECS slow")
            answered(stack, ours, wait=120)
            slow_naive = None
            if naive:
                with slow_ecs(stack):
                    jobs = mix(SlackCaller(stack, port), naive_keys, int(rate * seconds))
                    slow_naive = open_loop(jobs, rate, "naive, ECS slow")
                answered(stack, slow_naive, wait=5)  # its queue takes minutes: what it answered within 5 s
            theirs = None
            with throttled_ecs(stack):
                mine = burst(stack, bot.port, burst_keys[:burst_each], roots[:burst_each], "ours, ECS throttled")
                answered(stack, mine, wait=120)
                if naive:
                    theirs = burst(stack, port, burst_keys[burst_each:], roots[burst_each:], "naive, ECS throttled")
                    answered(stack, theirs, wait=5)
    return AckPhases(ours, slow_naive, mine, theirs)
