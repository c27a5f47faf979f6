"""What people feel, with the bot's jobs running at Slack's pace: ECS change → root message, "approval needed",
click → ECS, click → root message, deployment end → thread settled; for 1 … 1,000 live deployments.

The bot runs its real scheduler (reconcile every DEPLOYBOT_POLL_SECONDS = 5, drain every second) and its real
sender (one post per second per channel, chat.update paced the same); the Slack stand-in enforces one post per
second per channel. Times are taken where people would see them: the stand-in's own Web API (a wrapper around
`WebApi.call` records when each post or update was stored) and the ECS sandbox's own `Sandbox.call`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from bench.probes import percentile
from bench.seed import APPROVAL, register_families, seed_live
from bench.stack import CHANNELS, Stack, bench_channels, service_key
from bot.domain.enums import EventKind, OutboxState
from bot.runtime import build_sender
from bot.scheduler import build_scheduler
from bot.slack.clients import web_client
from models import Deployment, DeploymentEvent, Outbox
from sandbox.slack import payloads
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN


@dataclass
class SlackEvent:
    at: float
    method: str
    channel: str
    ts: str  # the message posted or updated
    thread_ts: str | None
    buttons: bool
    text: str


@dataclass
class Recorder:
    """Every successful post and update the stand-in stored, with the time it did."""

    events: list[SlackEvent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    quiet: float = 2.0  # s without a new message (and an empty outbox) that count as settled

    def since(self, t: float) -> list[SlackEvent]:
        with self.lock:
            return [e for e in self.events if e.at >= t]

    def last(self) -> float:
        with self.lock:
            return self.events[-1].at if self.events else 0.0


@contextmanager
def recording(stack: Stack) -> Iterator[Recorder]:
    api, rec = stack.slack._server.api, Recorder()
    original = api.call

    def call(method: str, params: dict[str, Any], bearer: str | None) -> Any:
        status, body, headers = original(method, params, bearer)
        if method in ("chat.postMessage", "chat.update") and status == 200 and body.get("ok"):
            blocks = params.get("blocks")
            event = SlackEvent(
                time.time(),
                method,
                str(params.get("channel") or body.get("channel") or ""),
                str(params.get("ts") or body.get("ts") or ""),
                str(params["thread_ts"]) if params.get("thread_ts") else None,
                "deploy_approve" in (blocks if isinstance(blocks, str) else json.dumps(blocks or [])),
                str(params.get("text") or ""),
            )
            with rec.lock:
                rec.events.append(event)
        return status, body, headers

    api.call = call  # type: ignore[method-assign]
    try:
        yield rec
    finally:
        api.call = original  # type: ignore[method-assign]


@dataclass
class EcsCalls:
    """When the sandbox received each ContinueServiceDeployment, by service deployment ARN."""

    continued: dict[str, float] = field(default_factory=dict)


@contextmanager
def ecs_recording(stack: Stack) -> Iterator[EcsCalls]:
    sandbox, calls = stack.ecs.sandbox, EcsCalls()
    original = sandbox.call

    def call(operation: str, raw: bytes, caller: str | None = None) -> tuple[int, bytes]:
        if operation == "ContinueServiceDeployment":
            calls.continued.setdefault(str(json.loads(raw).get("serviceDeploymentArn")), time.time())
        return original(operation, raw, caller)

    sandbox.call = call  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        sandbox.call = original  # type: ignore[method-assign]


@dataclass
class Live:
    id: int
    arn: str
    channel: str
    root_ts: str


def post_roots(stack: Stack, ids: list[int]) -> list[Live]:
    """Each seeded deployment's root message, posted as the sender would (before Slack's pace is switched on)."""
    client = web_client(DEFAULT_BOT_TOKEN, stack.slack.api_url)
    live: list[Live] = []
    with stack.ctx.sessions() as session:
        rows = session.execute(
            select(Deployment.id, Deployment.ecs_deployment_arn, Deployment.channel_id).where(Deployment.id.in_(ids))
        ).all()
    for dep_id, arn, channel in rows:
        ts = str(client.chat_postMessage(channel=channel, text=f"deployment #{dep_id}")["ts"])
        live.append(Live(int(dep_id), str(arn), str(channel), ts))
    with stack.ctx.sessions() as session, session.begin():
        for item in live:
            session.execute(update(Deployment).where(Deployment.id == item.id).values(root_ts=item.root_ts))
    return live


def unsent(stack: Stack) -> int:
    with stack.ctx.sessions() as session:
        stmt = (
            select(func.count()).select_from(Outbox).where(Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING)))
        )
        return int(session.scalar(stmt) or 0)


def wait_for(done: Callable[[], bool], limit: float) -> None:
    """Until `done()` holds (checked every 0.25 s) or `limit` seconds have gone."""
    deadline = time.time() + limit
    while time.time() < deadline and not done():
        time.sleep(0.25)


def wait_settled(stack: Stack, rec: Recorder, quiet: float | None = None, limit: float = 120.0) -> float:
    """Until the outbox is empty and Slack saw nothing for `quiet` s (the recorder's); returns the time waited."""
    quiet = rec.quiet if quiet is None else quiet
    started = time.time()
    while time.time() - started < limit:
        time.sleep(0.25)
        if time.time() - max(rec.last(), started) >= quiet and unsent(stack) == 0:
            break
    return time.time() - started


@dataclass
class FeltResult:
    live: int
    stage_to_root: list[float] = field(default_factory=list)  # s, ECS change → root updated
    buttons_to_reply: list[float] = field(default_factory=list)  # s, root shows the buttons → "approval needed"
    click_to_ecs: list[float] = field(default_factory=list)  # ms, click sent → ContinueServiceDeployment received
    click_to_root: list[float] = field(default_factory=list)  # s, click sent → root updated
    end_to_settled: list[float] = field(default_factory=list)  # s, ECS ended → last message of that deployment
    seen_to_settled: list[float] = field(default_factory=list)  # s, the bot stored the outcome → last message
    missing: dict[int, list[str]] = field(default_factory=dict)  # deployment → what was not seen of it

    def miss(self, dep_id: int, what: str) -> None:
        """Something of deployment `dep_id` never reached Slack (or ECS); a deployment counts once however often."""
        self.missing.setdefault(dep_id, []).append(what)


def _first(events: list[SlackEvent], live: Live, *, root: bool, after: float, buttons: bool = False) -> float | None:
    for e in events:
        if e.at < after or e.channel != live.channel:
            continue
        if root and e.method == "chat.update" and e.ts == live.root_ts and (e.buttons or not buttons):
            return e.at
        if not root and e.thread_ts == live.root_ts and "pproval needed" in e.text:
            return e.at
    return None


def click(stack: Stack, live: Live, user: str = ws.BOB, port: int | None = None) -> tuple[float, int]:
    """Click Approve on the root message in the stand-in, signed like Slack; (time sent, HTTP status)."""
    from bench.phases import SlackCaller

    store = stack.slack.store
    message = store.find_message(live.channel, live.root_ts)
    channel = ws.ALL_CHANNELS[live.channel]
    found = payloads.find_action((message or {}).get("blocks", []), "deploy_approve")
    if message is None or found is None:
        return time.time(), 0
    rid = store.issue_response_url(user, live.channel, live.root_ts, False)
    payload = payloads.message_actions(
        user,
        channel,
        message,
        ephemeral=False,
        action=payloads.action_json(found[0], found[1], {}),
        response_url=f"{stack.slack.url}/_sandbox/response/{rid}",
        trigger_id=store.issue_trigger(user),
    )
    sent = time.time()
    _, status, _ = SlackCaller(stack, port).post_form({"payload": json.dumps(payload)})
    return sent, status


def reconcile_runs() -> float:
    """Reconcile job runs finished in this process (the scheduler's own histogram)."""
    return REGISTRY.get_sample_value("deploybot_job_seconds_count", {"job": "reconcile"}) or 0.0


def felt(
    stack: Stack,
    count: int,
    *,
    clicks: bool = True,
    quiet: float = 2.0,
    lanes: int | None = None,
    latency: float = 0.0,
) -> FeltResult:
    """Seed `count` deployments, run the bot's jobs, and time what people see (see the module docstring).

    Every wait for the thread to settle follows the event it waits after (a finished pass, the pause seen, the
    click's root update, the end stored), so `quiet` can be shorter than a poll; the first waits for a pass.
    `lanes`: the sender's (DEPLOYBOT_SLACK_LANES unless given); `latency`: s the stand-in adds to every call once the
    roots are posted (real Slack answers in 100-300 ms; the stand-in at once)."""
    register_families(stack)
    channels = bench_channels(min(CHANNELS, count))
    seeded = seed_live(stack, [service_key(i) for i in range(count)], channels, advance=1.0, specs=APPROVAL)
    live = post_roots(stack, seeded.ids)
    stack.slack.store.settings.rate_limit = True  # one post per second per channel from here on
    stack.slack.store.settings.latency = latency
    result = FeltResult(count)
    scheduler = build_scheduler(stack.ctx, build_sender(stack.ctx, lanes))
    runs = reconcile_runs()
    scheduler.start()  # its first pass runs at once
    try:
        with recording(stack) as rec, ecs_recording(stack) as ecs:
            rec.quiet = quiet
            wait_for(lambda: reconcile_runs() > runs, 60)
            wait_settled(stack, rec)
            _to_pause(stack, rec, live, result)
            if clicks:
                _approve_all(stack, rec, ecs, live, result)
                _to_end(stack, rec, live, result)
    finally:
        scheduler.shutdown(wait=True)
        stack.slack.store.settings.rate_limit = False
        stack.slack.store.settings.latency = 0.0
    return result


def _to_pause(stack: Stack, rec: Recorder, live: list[Live], result: FeltResult) -> None:
    """ECS moves every deployment on to its approval pause at once: root updated, buttons, "approval needed"."""
    changed = time.time()
    stack.ecs.sandbox.advance(150)

    def shown() -> bool:
        events = rec.since(changed)
        return all(_first(events, i, root=False, after=changed) for i in live) and all(
            _first(events, i, root=True, after=changed, buttons=True) for i in live
        )

    wait_for(shown, 90 + len(live) * 0.2)  # not only quiet: the next poll may be seconds away
    wait_settled(stack, rec, limit=30)
    events = rec.since(changed)
    for item in live:
        root = _first(events, item, root=True, after=changed)
        buttons = _first(events, item, root=True, after=changed, buttons=True)
        reply = _first(events, item, root=False, after=changed)
        if root is None or buttons is None or reply is None:
            seen = f"root {root is not None}, buttons {buttons is not None}, reply {reply is not None}"
            result.miss(item.id, seen)
            continue
        result.stage_to_root.append(root - changed)
        result.buttons_to_reply.append(reply - buttons)


def _approve_all(stack: Stack, rec: Recorder, ecs: EcsCalls, live: list[Live], result: FeltResult) -> None:
    """Approvers click each root's Approve, 20 a second: click → ECS, click → root updated."""
    sent: dict[int, float] = {}
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = []
        for item in live:
            futures.append((item, pool.submit(click, stack, item)))
            time.sleep(0.05)
        for item, future in futures:
            at, status = future.result()
            if status == 200:
                sent[item.id] = at
            else:
                result.miss(item.id, f"click answered HTTP {status}" if status else "no Approve button to click")
    first = min(sent.values(), default=time.time())
    wait_for(lambda: all(_first(rec.since(first), i, root=True, after=sent[i.id]) for i in live if i.id in sent), 60)
    wait_settled(stack, rec, limit=30)
    events = rec.since(first)
    for item in live:
        if item.id not in sent:
            continue
        if item.arn in ecs.continued:
            result.click_to_ecs.append((ecs.continued[item.arn] - sent[item.id]) * 1000)
        root = _first(events, item, root=True, after=sent[item.id])
        if root is not None:
            result.click_to_root.append(root - sent[item.id])


def _to_end(stack: Stack, rec: Recorder, live: list[Live], result: FeltResult) -> None:
    """ECS finishes every deployment at once: when its last message reached Slack, from ECS's end and from the
    moment the bot stored the outcome (a poll interval apart at most)."""
    ended = time.time()
    stack.ecs.sandbox.advance(6 * 3600)
    wait_for(lambda: len(finished_at(stack, [i.id for i in live])) == len(live), 60)
    wait_settled(stack, rec, quiet=1.5 * rec.quiet, limit=60 + len(live) * 0.5)
    events = rec.since(ended)
    seen = finished_at(stack, [item.id for item in live])
    for item in live:
        mine = [e.at for e in events if e.channel == item.channel and item.root_ts in (e.ts, e.thread_ts)]
        if mine:
            result.end_to_settled.append(max(mine) - ended)
            if item.id in seen:
                result.seen_to_settled.append(max(mine) - seen[item.id])


def finished_at(stack: Stack, ids: list[int]) -> dict[int, float]:
    """When the bot stored each deployment's FINISHED event (the bot's clock, as epoch seconds)."""
    with stack.ctx.sessions() as session:
        rows = session.execute(
            select(DeploymentEvent.deployment_id, DeploymentEvent.at).where(
                DeploymentEvent.deployment_id.in_(ids), DeploymentEvent.kind == EventKind.FINISHED
            )
        ).all()
    return {int(dep): at.timestamp() for dep, at in rows if dep is not None}


def felt_notes(r: FeltResult) -> list[str]:
    def show(values: list[float], unit: str) -> str:
        if not values:
            return "n/a"
        return (
            f"p50 {percentile(values, 50):.2f} / p95 {percentile(values, 95):.2f} / "
            f"max {max(values):.2f} {unit} (n={len(values)})"
        )

    notes = [
        f"{r.live} live: ECS change → root updated {show(r.stage_to_root, 's')}; root shows buttons → "
        f"'approval needed' reply {show(r.buttons_to_reply, 's')}; click → ContinueServiceDeployment "
        f"{show(r.click_to_ecs, 'ms')}; click → root updated {show(r.click_to_root, 's')}; ECS ended → thread "
        f"settled {show(r.end_to_settled, 's')}; the bot saw the end → thread settled {show(r.seen_to_settled, 's')}",
    ]
    if r.missing:
        some = "; ".join(f"#{dep}: {', '.join(what)}" for dep, what in list(r.missing.items())[:3])
        notes.append(f"{r.live} live: {len(r.missing)} not seen, e.g. {some}")
    return notes
