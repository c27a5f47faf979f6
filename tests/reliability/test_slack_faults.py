"""Slack faults over whole deployments: about 30 % of the bot's Web API calls answered 429 with Retry-After, a 5xx
page, or `fatal_error` after Slack did the work, and as many of its response_url POSTs (the answers to clicks and
commands) a 429, a 5xx page, or a 5xx page after Slack showed the answer. Started by signed `/deploy` commands and
approved by signed clicks over HTTP; nothing lost, nothing posted twice, no decision applied twice, every click and
command answered, every ack inside Slack's 3 s."""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain import backoff
from bot.domain.enums import DeploymentStatus, EventKind, OutboxKind, OutboxState
from bot.slack import context as slack_context
from bot.slack.blocks import APPROVE_ACTION, ROLLBACK_ACTION
from bot.slack.clients import web_client
from bot.slack.lookup import METADATA_EVENT
from bot.slack.sender import OutboxSender
from handlers.commands import WORKING
from models import Outbox
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle
from tests.e2e_support import CATALOG, World, running_world, wait_for
from tests.reliability.conftest import SOAK, backend, scale
from tests.reliability.figures import record

SEED = 13
RATE = 0.12  # each of the three faults below: 1 - 0.88³ ≈ 32 % of calls hit one
RETRY_AFTER = 1
FAULTS = [
    {"method": "*", "status": 429, "retry_after": RETRY_AFTER, "rate": RATE, "times": -1},
    {"method": "*", "status": 503, "rate": RATE, "times": -1},  # Slack's edge: an HTML page, not JSON
    {"method": "*", "error": "fatal_error", "after_store": True, "rate": RATE, "times": -1},  # done, then the error
    # How clicks and commands are answered: a response_url's own 429, 5xx page, and page after storing the answer
    # (the first three POSTs meet one each, so even `make test`'s few requests meet all three).
    {"method": "response_url", "status": 503, "after_store": True, "times": 1},
    {"method": "response_url", "status": 429, "retry_after": RETRY_AFTER, "times": 1},
    {"method": "response_url", "status": 503, "times": 1},
    {"method": "response_url", "status": 429, "retry_after": RETRY_AFTER, "rate": RATE, "times": -1},
    {"method": "response_url", "status": 503, "rate": RATE, "times": -1},
    {"method": "response_url", "status": 503, "after_store": True, "rate": RATE, "times": -1},
]
COMMANDS = ["catalog canary 10% image=:{n}.0.1", "ui image=:{n}.0.2", "orders image=:{n}.0.3"]
# Under `make soak` the sender keeps production's pace (a post per channel per second, a root edit per second) and
# back-off (doubling from 2 s up to 30 s, bot/domain/backoff.py); `make test` caps it at 2 s so a run takes seconds.
PACE = 1.0 if SOAK else 0.0
BACKOFF_CAP = backoff.CAP if SOAK else 2.0
ACK_LIMIT = 3.0  # Slack's: an unanswered request fails in the person's client


@dataclass
class Run:
    """What the test sent, and how long each request took to be answered."""

    world: World
    acks: list[float] = field(default_factory=list)
    clicks: dict[tuple[int, str], int] = field(default_factory=Counter)
    answers: int = 0  # ephemerals Bob has been shown
    urls: dict[str, list[str]] = field(default_factory=dict)  # user → the response_url ids of their requests

    def request(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """One signed request through the stand-in, timed; Slack would show an error if the bot missed the ack."""
        started = time.monotonic()
        result = self.world.control(name, body)
        self.acks.append(time.monotonic() - started)
        assert result["status"] == 200 and result["error"] is None, result
        user, url = str(body["user"]), str(result["request"]["response_url"])
        self.urls.setdefault(user, []).append(url.rsplit("/", 1)[-1])
        return result


@pytest.fixture
def lookups_every_click(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every click asks Slack for the approvers again (no cache), so every click meets the faults."""
    monkeypatch.setattr(slack_context, "MEMBERSHIP_TTL", timedelta(0))


@pytest.fixture
def run(lookups_every_click: None, database_url: str, slack: SlackSandboxHandle, ecs_url: str) -> Iterator[Run]:
    slack.store.reset()
    with running_world(database_url, slack, ecs_url) as w:
        w.ecs.post("reset")
        w.ecs.post("speed", {"speed": 0})
        behind = time.time() - w.ecs.now().timestamp()
        if behind > 0:
            w.ecs.advance(behind)  # the module's ECS clock started earlier: the bot's clock must not lead it
        client = web_client(DEFAULT_BOT_TOKEN, slack.api_url)
        w.sender = OutboxSender(
            w.ctx.sessions,
            client,
            CATALOG,
            owner="slack-faults",
            post_interval=PACE,
            update_interval=PACE,
            backoff_cap=BACKOFF_CAP,
        )
        yield Run(w)
        slack.store.faults.clear()


def _deliver(w: World, until: Callable[[], bool] | None = None) -> None:
    """Drain the outbox until it is empty (or `until` holds), waiting for each row's due time (Retry-After, back-off)."""
    deadline = time.monotonic() + 120
    while True:
        w.sender.drain_once()
        if until is not None and until():
            return
        with w.ctx.sessions() as session:
            due = session.scalars(
                select(Outbox.not_before).where(Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING)))
            ).all()
        if not due:
            assert until is None, "the outbox is empty but what the test waits for never came"
            return
        assert time.monotonic() < deadline, f"the outbox never emptied ({len(due)} rows left)"
        wait = (min(_aware(d) for d in due) - datetime.now(UTC)).total_seconds()
        time.sleep(min(max(wait, 0.02), 1.0))  # the next row's due time is the event this waits for


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _button(w: World, dep: int, hook: str) -> dict[str, Any] | None:
    """The root message, once it shows the Approve button for this pause."""
    if not w.view(dep).root_ts:
        return None  # not posted yet: Slack keeps failing the post, or the channel's pace holds it
    root = w.root(dep)
    actions = [e for b in root.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]]
    shown = any(e["action_id"] == APPROVE_ACTION and hook in e["value"] for e in actions)
    return root if shown else None


def _approve(run: Run, dep: int, hook: str) -> None:
    """Bob sees the button, clicks Approve and waits for the bot's answer (a refusal when Slack failed the bot)."""
    w = run.world
    _deliver(w, until=lambda: _button(w, dep, hook) is not None)
    root = _button(w, dep, hook)
    assert root is not None
    run.clicks[(dep, hook)] += 1
    click = {"user": "U0BOB", "channel": w.view(dep).channel_id, "message_ts": root["ts"], "action_id": APPROVE_ACTION}
    before = len(_fallbacks(w, "U0BOB"))
    refused = _refusals(w, dep)
    run.request("click", click)
    run.answers += 1
    url = run.urls["U0BOB"][-1]
    wait_for(lambda: _answered(w, "U0BOB", url, before), 30, f"Bob's answer to click {run.answers}")

    # A late Web API answer to an earlier click (its response_url stored, then a 5xx page) can pass for this one's,
    # so the click counts as done once it is on record too: approved, or refused (the approver lookup failed).
    def recorded() -> bool:
        return w.view(dep).decision_for(hook) is not None or _refusals(w, dep) > refused

    wait_for(recorded, 30, f"click {run.answers} (deployment {dep}, hook {hook}) on record")


def _refusals(w: World, dep: int) -> int:
    """How many of Bob's requests on this deployment were refused, on record."""
    return sum(1 for e in w.view(dep).events if e.kind is EventKind.REFUSED and e.actor == "U0BOB")


def _fallbacks(w: World, user: str) -> list[dict[str, Any]]:
    """The answers the bot sent `user` through the Web API (chat.postEphemeral) that Slack took."""
    return [c for c in w.slack.store.calls_for("chat.postEphemeral") if c["params"].get("user") == user and c["ok"]]


def _drive(run: Run, deps: list[int]) -> None:
    """Reconcile and send what is due, approve each pause once Bob sees it, and jump ECS to the earliest next
    wake-up, until every deployment has ended: ECS goes on while Slack fails, as it does in production."""
    w = run.world
    for _ in range(600):
        w.ctx.usecases.reconciler.reconcile_once()
        w.sender.drain_once()
        active = [v for v in (w.view(d) for d in deps) if v.is_active]
        if not active:
            return
        pauses = [
            (v.id, v.awaiting[0].hook_id)
            for v in active
            if v.status is DeploymentStatus.AWAITING_APPROVAL and not v.decision_for(v.awaiting[0].hook_id)
        ]
        for dep, hook in pauses:
            _approve(run, dep, hook)
        if pauses:
            continue
        wakes = [w.ecs.get(f"state?deployment={v.ecs_deployment_arn}") for v in active if v.ecs_deployment_arn]
        due = [s["nextWakeAt"] - s["now"] for s in wakes if s["nextWakeAt"] is not None]
        w.ecs.advance(max(0.0, min(due)) + 0.001 if due else 5)
    raise AssertionError(f"never ended: {[(v.id, v.status) for v in (w.view(d) for d in deps) if v.is_active]}")


def _faults_met(calls: list[dict[str, Any]]) -> Counter[str]:
    """The faults the stand-in answered, by kind."""
    kinds: Counter[str] = Counter()
    for call in calls:
        if call["status"] == 429:
            kinds["429"] += 1
        elif call["status"] >= 500:
            kinds["5xx"] += 1
        elif call.get("error") == "fatal_error":
            kinds["fatal_error"] += 1
    return kinds


def _answers(w: World, user: str) -> list[dict[str, Any]]:
    """The answers `user` has been shown (not "Working on it…", which a slow answer is preceded by)."""
    return [m for m in w.ephemerals(user) if m["text"] != WORKING]


@dataclass(frozen=True)
class Tally:
    """How one person's requests were answered: by their response_url, or by the Web API after it failed."""

    asked: int  # requests (each with its own response_url)
    shown: int  # answers the person sees
    unanswered: int  # requests whose URL stored nothing, beyond the answers the Web API sent instead
    extra: int  # answers beyond one per request
    stored_then_5xx: int  # POSTs to the person's URLs that Slack stored and answered with a 5xx page


def _tally(w: World, run: Run, user: str) -> Tally:
    """A response_url's 5xx page after storing cannot be told from one before (nobody can read an ephemeral back),
    so the bot sends the answer again: the only way an answer may be shown twice."""
    urls = set(run.urls.get(user, []))
    posts = [r for r in w.slack.store.responses if r["url"] in urls and r["text"] != WORKING]
    stored = Counter(r["url"] for r in posts if r["stored"])
    fallbacks = [c for c in _fallbacks(w, user) if c["params"].get("text") != WORKING]
    shown = len(_answers(w, user))
    assert shown == sum(stored.values()) + len(fallbacks), (user, stored, fallbacks)
    after = sum(1 for r in posts if r["fault"] == "503 after storing")
    unanswered = max(0, len(urls - set(stored)) - len(fallbacks))
    return Tally(len(urls), shown, unanswered, max(0, shown - len(urls)), after)


def _how_answered(w: World, run: Run) -> dict[str, list[str]]:
    """Each person's answers as Slack saw them, in order: which URL or Web API call, its fault, and the text."""
    lines: dict[str, list[tuple[float, str]]] = {}
    for user, ids in run.urls.items():
        for r in w.slack.store.responses:
            if r["url"] in ids and r["text"] != WORKING:
                what = f"url {r['url'][-8:]} HTTP {r['status']} {r['fault'] or ''} stored={r['stored']}"
                lines.setdefault(user, []).append((r["time"], f"{what}: {r['text'][:50]!r}"))
    for c in w.slack.store.calls_for(None):
        to = c["params"].get("user") or c["params"].get("channel")
        if c["method"] in ("chat.postEphemeral", "chat.postMessage") and to in run.urls:
            what = f"{c['method']} to {c['params'].get('channel')} ok={c['ok']} {c.get('error') or c['status']}"
            lines.setdefault(str(to), []).append((c["time"], f"{what}: {str(c['params'].get('text'))[:50]!r}"))
    return {user: [f"{t:.3f} {line}" for t, line in sorted(found)] for user, found in lines.items()}


def _answered(w: World, user: str, url: str, fallbacks: int) -> bool:
    """True once the request with this response_url is answered: stored there, or sent through the Web API."""
    stored = any(r["url"] == url and r["stored"] for r in w.slack.store.responses)
    return stored or len(_fallbacks(w, user)) > fallbacks


def _early_updates(calls: list[dict[str, Any]]) -> list[float]:
    """How soon after a 429 each chat.update came again, when sooner than its Retry-After."""
    updates = [c for c in calls if c["method"] == "chat.update"]
    early = []
    for before, after in itertools.pairwise(updates):
        gap = after["time"] - before["time"]
        if before["status"] == 429 and gap < RETRY_AFTER:
            early.append(gap)
    return early


def _early_responses(responses: list[dict[str, Any]]) -> list[float]:
    """How soon after a 429 a response_url was POSTed to again, when sooner than its Retry-After."""
    early = []
    for url in {r["url"] for r in responses}:
        posts = [r for r in responses if r["url"] == url]
        early += [
            b["time"] - a["time"]
            for a, b in itertools.pairwise(posts)
            if a["status"] == 429 and b["time"] - a["time"] < RETRY_AFTER
        ]
    return early


def _posted_keys(w: World) -> Counter[str]:
    """Every outbox key Slack holds a message for, with how many messages carry it."""
    keys: Counter[str] = Counter()
    for messages in w.snapshot()["channels"].values():
        for m in messages:
            meta = m.get("metadata") or {}
            if meta.get("event_type") == METADATA_EVENT:
                keys[meta["event_payload"]["key"]] += 1
    return keys


def _delays(w: World, rows: list[Outbox], calls: list[dict[str, Any]]) -> list[float]:
    """Seconds from each message's row being stored to the message being visible in Slack."""
    edits: dict[str, list[float]] = {}
    for c in calls:
        if c["method"] == "chat.update" and c["ok"]:
            edits.setdefault(str(c["params"].get("ts")), []).append(c["time"])
    delays = []
    for row in rows:
        queued = _aware(row.created_at).timestamp()
        if row.kind is OutboxKind.POST and row.slack_ts:
            delays.append(float(row.slack_ts) - queued)
        elif row.kind is OutboxKind.UPDATE_ROOT and row.slack_ts:
            seen = [t for t in edits.get(row.slack_ts, []) if t >= queued]
            if seen:
                delays.append(min(seen) - queued)
    return delays


# The soak's rounds follow one another (a round's deployments run side by side in one channel), so each is a test of
# its own, with its own seed: on many workers they run side by side instead of all four on one worker.
ROUNDS = scale(1, 4)


@pytest.mark.parametrize("n", range(1, ROUNDS + 1), ids=lambda n: f"round{n}")
def test_slack_faults_lose_and_duplicate_nothing(run: Run, database_url: str, n: int) -> None:
    w = run.world
    w.control("settings", {"faults": FAULTS, "fault_seed": SEED + n - 1})
    started: list[int] = []
    for text in COMMANDS:
        started.append(_start(run, text.format(n=n + 1), started))
    _drive(run, started)
    _deliver(w)
    calls = w.slack.store.calls_for(None)
    w.control("settings", {"faults": []})

    views = [w.view(d) for d in started]
    with w.ctx.sessions() as session:
        rows = list(session.scalars(select(Outbox).where(Outbox.deployment_id.in_(started))))
    failed = [(r.idempotency_key, r.last_error) for r in rows if r.state is not OutboxState.SENT]
    posts = [r for r in rows if r.kind is OutboxKind.POST and r.slack_ts]
    keys = _posted_keys(w)
    missing = [r.idempotency_key for r in posts if keys[r.idempotency_key] == 0]
    duplicated = sum(n - 1 for n in keys.values() if n > 1)
    applied = Counter(c["parameters"].get("hookId") for c in w.ecs.calls("ContinueServiceDeployment") if c["done"])
    twice = sum(n - 1 for n in applied.values() if n > 1)
    decisions = [(v.id, e.key) for v in views for e in v.events if e.kind is EventKind.DECISION]
    refusals = [e for v in views for e in v.events if e.kind is EventKind.REFUSED and e.actor == "U0BOB"]
    delays = sorted(_delays(w, rows, calls))
    faults = _faults_met(calls) + _faults_met(w.slack.store.responses)
    tallies = {user: _tally(w, run, user) for user in ("U0ALICE", "U0BOB")}
    unanswered = sum(t.unanswered for t in tallies.values())
    shown_twice = sum(t.extra for t in tallies.values())
    lost = len(failed) + len(missing) + sum(1 for v in views if v.status is not DeploymentStatus.SUCCEEDED)
    lost += unanswered
    record(
        f"Slack 429 (Retry-After {RETRY_AFTER} s) / 503 page / fatal_error after storing, {RATE * 100:.0f} % each; "
        f"response_url 429 / 503 page / 503 after storing, {RATE * 100:.0f} % each"
        + (f", round {n} of {ROUNDS}" if ROUNDS > 1 else ""),
        backend=backend(database_url),
        deployments=len(views),
        requests=len(run.acks),
        faults=f"{sum(faults.values())} of {len(calls) + len(w.slack.store.responses)} calls: "
        + ", ".join(f"{n}×{k}" for k, n in faults.items())
        + f"; {shown_twice} answers shown twice (stored, then a 5xx page)",
        answers_shown_twice=shown_twice,
        lost=lost,
        duplicated=duplicated,
        applied_twice=twice,
        max_ack_s=max(run.acks),
        delivery_delay_s=f"p50 {_pct(delays, 50):.2f} / p95 {_pct(delays, 95):.2f} / max {delays[-1]:.2f}",
        command=f"make soak (test_slack_faults.py[round{n}])",
    )
    assert [v.status for v in views] == [DeploymentStatus.SUCCEEDED] * len(views)
    assert not failed and not missing, (failed, missing)
    assert duplicated == 0, [k for k, n in keys.items() if n > 1]
    assert twice == 0 and len(set(decisions)) == len(decisions), applied
    assert max(run.acks) < ACK_LIMIT, sorted(run.acks)[-5:]
    assert _early_updates(calls) == [] and _early_responses(w.slack.store.responses) == []
    # Every click and command answered, once (twice only where Slack stored it and answered a 5xx page), and every
    # click on record: approved, or refused because Slack failed the approver lookup.
    assert unanswered == 0, tallies
    assert all(t.extra <= t.stored_then_5xx for t in tallies.values()), (tallies, _how_answered(w, run))
    assert run.answers == sum(run.clicks.values()) == len(decisions) + len(refusals), (
        run.clicks,
        decisions,
        [e.detail for e in refusals],
        _how_answered(w, run).get("U0BOB"),
    )
    assert all(faults[k] > 0 for k in ("429", "5xx", "fatal_error")), faults
    assert {r["fault"] for r in w.slack.store.responses} >= {"429", "503", "503 after storing"}
    for v in views:
        final = w.root(v.id)
        assert "succeeded" in final["text"].lower(), final["text"]
        actions = [
            e["action_id"] for b in final.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]
        ]
        assert APPROVE_ACTION not in actions and ROLLBACK_ACTION not in actions


def _start(run: Run, text: str, known: list[int]) -> int:
    """Alice types `/deploy text`; the deployment once ECS has started it."""
    w = run.world
    run.request("command", {"user": "U0ALICE", "channel": "C0DEPLOYS", "text": text})

    def newest() -> int | None:
        views = [v for v in w.ctx.usecases.deployments.history_for_user("U0ALICE", 1) if v.ecs_deployment_arn]
        return views[0].id if views and views[0].id not in known else None

    return wait_for(newest, 30, f"/deploy {text} started")


def _pct(values: list[float], pct: int) -> float:
    """The pct-th percentile (values sorted)."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]
