"""Two and three replicas of `deploybot run` on one database, one ECS, one Slack: commands round-robin, every click
on a replica other than the one that started the deployment, one replica killed while approvals wait.

Each deployment must end as asked in ECS and in its root message, every queued message posted once, its thread in
order, each UpdateService and each hook's ContinueServiceDeployment carried out once, every ack in under 3 s, and
one post a second per channel for all replicas together. Every `/deploy` is answered: one the bot refuses with "try
again" is tried again as a person would (counted); one acked and never answered is lost. On a failure the message
names the commands' tries and the replicas' log lines about what went wrong (all kept beside them in the tmp dir).
"""

from __future__ import annotations

import itertools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from bench.probes import percentile
from bench.stack import bench_channels, create_services, service_key, settle
from bot.db import migrate
from bot.db.sessions import make_engine, session_factory
from bot.domain.enums import DeploymentStatus, OutboxKind, OutboxState
from models import Deployment, Outbox
from sandbox.ecs.server import SandboxHandle
from sandbox.ecs.server import start as start_ecs
from sandbox.slack import workspace as ws
from sandbox.slack.server import SlackSandboxHandle
from sandbox.slack.server import start as start_slack
from tests.reliability.conftest import SOAK, backend, scale
from tests.reliability.figures import record
from tests.reliability.fleet import Asked, Replica, Slack, evidence, metadata_key, start_replicas

SPEED = 60.0  # ECS seconds per real second: a 1-minute bake takes a second
POLL = 1.0  # each replica's reconcile interval (DEPLOYBOT_POLL_SECONDS)
DEPLOYMENTS = scale(6, 24)
REPLICAS = [2, 3] if SOAK else [2]  # make test has three replicas in the kill -9 case
KILLED = [2, 3] if SOAK else [3]  # replicas in the kill -9 case (one of them killed)
CHANNELS = scale(3, 4)
# What each third of the services is: canary with two approvals, blue/green with one, rolling with none.
KINDS = (
    "strategy: canary\n    approval_stages: [PRE_PRODUCTION_TRAFFIC_SHIFT]",
    "strategy: bluegreen\n    approval_stages: [POST_TEST_TRAFFIC_SHIFT]",
    "strategy: rolling",
)
CATALOG = """defaults:
  region: us-east-1
  cluster: unicorn-watch
  container: bench
  deployers: [U0ALICE]
  approvers: [S0APPROVERS]
  four_eyes: true
  approval_timeout: 6h
  canary_percent: 10
  canary_bake: 1m
  bake: 1m
services:
"""
# Mild ECS trouble under make soak (the ECS-fault scenario has the heavy kind).
THROTTLED = 0.05 if SOAK else 0.0  # share of every ECS call answered ThrottlingException
LATENCY = (0.02, 0.15) if SOAK else (0.0, 0.0)  # seconds added to every ECS call


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
def db(database_url: str) -> Iterator[tuple[str, Engine]]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)  # before the replicas start (on SQLite they would race to migrate)
    yield database_url, engine
    engine.dispose()


@dataclass
class StageWatch:
    """When each ECS deployment's status or lifecycle stage changed, read from the sandbox every 0.1 s."""

    ecs: SandboxHandle
    changes: list[tuple[str, float]] = field(default_factory=list)  # (service deployment ARN, real time)
    _seen: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        initial = set(self.ecs.sandbox.engine.store.deployments)
        while not self._stop.wait(0.1):
            with self.ecs.sandbox.lock:
                self.ecs.sandbox.catch_up()
                now = time.time()
                for arn, d in self.ecs.sandbox.engine.store.deployments.items():
                    state = (d.status, d.lifecycle_stage)
                    if arn not in initial and self._seen.get(arn) != state:
                        self._seen[arn] = state
                        self.changes.append((arn, now))

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Run:
    """One scenario: replicas, Slack acting towards them, and who started which deployment."""

    replicas: list[Replica]
    slack: Slack
    engine: Engine
    ecs: SandboxHandle
    channels: list[str]
    tmp: Path
    backend: str
    asked: list[Asked] = field(default_factory=list)  # every /deploy, with its tries and answers
    starter: dict[str, int] = field(default_factory=dict)  # service key → replica index
    clicked: set[str] = field(default_factory=set)  # button values (dep|hook) clicked once each
    dead: set[int] = field(default_factory=set)

    def rows(self) -> list[Deployment]:
        with session_factory(self.engine)() as session:
            return list(session.scalars(select(Deployment).order_by(Deployment.id)))

    def outbox(self) -> list[Outbox]:
        with session_factory(self.engine)() as session:
            return list(session.scalars(select(Outbox).order_by(Outbox.id)))

    def unsent(self) -> int:
        return sum(1 for row in self.outbox() if row.state in (OutboxState.PENDING, OutboxState.SENDING))

    def deploy_all(self) -> None:
        """Every /deploy at once, round-robin over the replicas, spread over the channels; each answer read, and
        a "try again" tried again (on the next replica) after a pause."""
        per_channel = max(1, DEPLOYMENTS // CHANNELS)

        def one(i: int) -> Asked:
            key, n = service_key(i), len(self.replicas)
            channel = self.channels[(i // per_channel) % len(self.channels)]
            asked = self.slack.deploy(lambda t: self.replicas[(i + t) % n], ws.ALICE, channel, f"{key} image=:2.{i}")
            self.starter[key] = (i + asked.retries) % n
            return asked

        with ThreadPoolExecutor(max_workers=8) as pool:
            self.asked = list(pool.map(one, range(DEPLOYMENTS)))

    def other_replica(self, service: str) -> Replica:
        """A live replica that is not the one that started the deployment (the survivor, if it is the only one)."""
        alive = [i for i in range(len(self.replicas)) if i not in self.dead]
        others = [i for i in alive if i != self.starter[service]] or alive
        return self.replicas[others[len(self.clicked) % len(others)]]

    def approve_waiting(self) -> int:
        """Click every Approve button shown that nobody clicked yet (Bob, four-eyes: Alice asked)."""
        clicks = 0
        for row in self.rows():
            if not row.root_ts:
                continue
            value = self.slack.approve_button(row.channel_id, row.root_ts)
            if value and value not in self.clicked:
                self.slack.click_approve(self.other_replica(row.service_key), ws.BOB, row.channel_id, row.root_ts)
                self.clicked.add(value)
                clicks += 1
        return clicks

    def waiting(self) -> int:
        """Deployments whose root message shows an Approve button now."""
        return sum(
            1 for r in self.rows() if r.root_ts and self.slack.approve_button(r.channel_id, r.root_ts) is not None
        )

    def until_done(self, before_click: Callable[[], bool] = lambda: True, limit: float = 100.0) -> None:
        """Approve as buttons appear until every deployment ended and the outbox is empty."""
        deadline = time.monotonic() + limit
        while True:
            rows = self.rows()
            if len(rows) == DEPLOYMENTS and not any(r.status.is_active for r in rows) and not self.unsent():
                return
            if time.monotonic() >= deadline:
                found = {r.service_key for r in rows}
                stuck = [r.service_key for r in rows if r.status.is_active]
                stuck += [service_key(i) for i in range(DEPLOYMENTS) if service_key(i) not in found]
                raise AssertionError(f"not done: {stuck}\n{self.evidence(stuck)}")
            if before_click():
                self.approve_waiting()
            time.sleep(0.2)

    def evidence(self, about: list[str]) -> str:
        """What a failure's message carries about these services (and where the rest is kept)."""
        return evidence(self.tmp, self.replicas, self.asked, about)


def _catalog(tmp: Path) -> Path:
    body = CATALOG + "".join(f"  {service_key(i)}:\n    {KINDS[i % len(KINDS)]}\n" for i in range(DEPLOYMENTS))
    path = tmp / "services.yml"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.fixture
def run(
    tmp_path: Path, db: tuple[str, Engine], ecs: SandboxHandle, stand_in: SlackSandboxHandle, request: Any
) -> Iterator[Run]:
    url, engine = db
    if THROTTLED:
        ecs_control(ecs, "fault", {"operation": "*", "code": "ThrottlingException", "rate": THROTTLED})
    low, high = LATENCY
    ecs_control(ecs, "latency", {"min": low, "max": high})
    replicas = start_replicas(request.param, tmp_path, url, _catalog(tmp_path), stand_in.api_url, ecs.url, POLL)
    try:
        yield Run(replicas, Slack(stand_in), engine, ecs, bench_channels(CHANNELS), tmp_path, backend(url))
    finally:
        for replica in replicas:
            replica.stop()


def ecs_control(ecs: SandboxHandle, action: str, body: dict[str, Any]) -> None:
    from tests.support import Control

    Control(ecs.url).post(action, body)


@dataclass
class Outcome:
    """What the run left in ECS, in Slack and in the database, as the figures count it."""

    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    applied_twice: list[str] = field(default_factory=list)
    out_of_order: list[str] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    dropped: int = 0  # approval requests overtaken by their decision, dropped by design


def outcome(run: Run, watch: StageWatch) -> Outcome:
    """Every deployment, message and ECS change checked against what was asked."""
    found = Outcome()
    rows, outbox, store = run.rows(), run.outbox(), run.slack.stand_in.store
    _deployments(run, rows, found)
    _messages(run, rows, outbox, found)
    calls = run.ecs.sandbox.calls
    updates = Counter(c["parameters"].get("service") for c in calls if c["operation"] == "UpdateService" and c["done"])
    found.duplicated += [f"UpdateService ×{n} on {s}" for s, n in updates.items() if n > 1]
    continued = Counter(
        c["parameters"].get("hookId") for c in calls if c["operation"] == "ContinueServiceDeployment" and c["done"]
    )
    found.applied_twice += [f"hook {h} continued ×{n}" for h, n in continued.items() if n > 1]
    for channel in run.channels:
        # When Slack stored each post (its ts): the call log's time is when the answer went, which a slow answer
        # on a loaded machine skews by a few hundred milliseconds.
        times = sorted(float(m["ts"]) for m in store.snapshot(channel)["channels"].get(channel, []))
        found.gaps += [b - a for a, b in itertools.pairwise(times)]
    found.delays = _delays(run, rows, watch)
    return found


def _deployments(run: Run, rows: list[Deployment], found: Outcome) -> None:
    """Each asked-for deployment: SUCCEEDED in the bot, SUCCESSFUL in ECS, and its root message says so."""
    for i in range(DEPLOYMENTS):
        row = next((r for r in rows if r.service_key == service_key(i)), None)
        if row is None or row.status is not DeploymentStatus.SUCCEEDED or not row.root_ts:
            found.lost.append(f"{service_key(i)}: {row.status if row else 'never started'}")
            continue
        ecs = run.ecs.sandbox.engine.store.deployments.get(row.ecs_deployment_arn or "")
        root = run.slack.stand_in.store.find_message(row.channel_id, row.root_ts) or {}
        if ecs is None or ecs.status != "SUCCESSFUL":
            found.lost.append(f"{row.service_key}: ECS says {ecs.status if ecs else 'nothing'}")
        if "succeeded" not in str(root.get("text", "")) or run.slack.approve_button(row.channel_id, row.root_ts):
            found.lost.append(f"{row.service_key}: root message reads {root.get('text')!r}")


def _messages(run: Run, rows: list[Deployment], outbox: list[Outbox], found: Outcome) -> None:
    """Every queued message sent and in Slack exactly once; each thread in the order it was queued. A reply the
    sender dropped on purpose (an approval request whose pause was decided before its turn came) is not lost."""
    dropped = {r.idempotency_key for r in outbox if r.slack_ts is None and (r.last_error or "").startswith("overtaken")}
    found.lost += [f"outbox {r.idempotency_key}: {r.state.value}" for r in outbox if r.state is not OutboxState.SENT]
    in_slack = [m for channel in run.channels for m in run.slack.stand_in.store.snapshot()["channels"].get(channel, [])]
    keys = Counter(metadata_key(m) for m in in_slack)
    found.duplicated += [f"{k} posted ×{n}" for k, n in keys.items() if k and n > 1]
    posts = [r for r in outbox if r.kind is OutboxKind.POST and not r.user_id and r.idempotency_key not in dropped]
    found.lost += [f"{r.idempotency_key} not in Slack ({r.last_error})" for r in posts if r.idempotency_key not in keys]
    for row in rows:
        queued = [r.idempotency_key for r in posts if r.deployment_id == row.id and r.in_thread]
        thread = [metadata_key(m) for m in in_slack if m.get("thread_ts") == row.root_ts and m["ts"] != row.root_ts]
        if thread != queued:
            found.out_of_order.append(f"{row.service_key}: {thread} ≠ {queued}")
    found.dropped = len(dropped)


def _delays(run: Run, rows: list[Deployment], watch: StageWatch) -> list[float]:
    """For each ECS change once the root message was up: how long until Slack showed the root edited after it.
    (Before that the root post waits for its channel's turn, shared by every deployment told there.)"""
    edits = [c for c in run.slack.stand_in.store.calls_for("chat.update") if c["ok"]]
    delays = []
    for row in rows:
        if not row.root_ts:
            continue
        shown = sorted(c["time"] for c in edits if c["params"].get("ts") == row.root_ts)
        for arn, at in watch.changes:
            after = [t for t in shown if t >= at]
            if arn == row.ecs_deployment_arn and at >= float(row.root_ts) and after:
                delays.append(after[0] - at)
    return delays


def _figures(run: Run, found: Outcome, scenario: str, faults: str, command: str) -> None:
    acks = [reply.seconds for _, reply in run.slack.replies]
    record(
        scenario,
        backend=run.backend,
        deployments=DEPLOYMENTS,
        requests=len(acks),
        faults=faults,
        lost=len(found.lost),
        duplicated=len(found.duplicated),
        applied_twice=len(found.applied_twice),
        max_ack_s=max(acks),
        delivery_delay_s=percentile(found.delays, 95),
        post_gap_min_s=min(found.gaps),
        post_gap_median_s=statistics.median(found.gaps),
        dropped=found.dropped,
        retried=sum(a.retries for a in run.asked),  # /deploys told "try again", and tried again
        slowest_answer_s=max(t.seconds for a in run.asked for t in a.tries),  # command to its answer
        command=command,
    )


def _assert_answered(run: Run) -> None:
    """Every /deploy answered that it started (or queued) a deployment; a silent one, or a refusal still saying
    "try again" after every retry, is lost."""
    silent = [a.text.split()[0] for a in run.asked if a.silent]
    assert not silent, f"acked, never answered: {silent}\n{run.evidence(silent)}"
    # Started or queued, the answer names the deployment ("Deployment #7 of `bench-0003` is starting…").
    refused = [a.text.split()[0] for a in run.asked if "Deployment #" not in a.said()]
    assert not refused, f"refused: {refused}\n{run.evidence(refused)}"


def _assert_clean(run: Run, found: Outcome, survivors: list[Replica] | None = None) -> None:
    failed = [(what, r.status) for what, r in run.slack.replies if r.status != 200 or r.seconds >= 3.0]
    assert not failed, failed  # every request answered, within Slack's 3 s
    _assert_answered(run)
    about = [(x.split()[1] if x.startswith("outbox ") else x.split()[0]).rstrip(":") for x in found.lost]
    assert not found.lost, f"{found.lost}\n{run.evidence(about)}"
    assert not found.duplicated, found.duplicated
    assert not found.applied_twice, found.applied_twice
    assert not found.out_of_order, found.out_of_order
    # About one post a second per channel, whichever replica posted (replicas pacing only themselves post ~0.01 s
    # apart; Slack's own clock on a busy machine, and the call's start against its turn, leave some slack).
    assert min(found.gaps) >= 0.7, sorted(found.gaps)[:5]
    errors = [line for r in (survivors or run.replicas) for line in r.errors()]
    assert not errors, errors[:3]


def _faults_label(run: Run, more: str = "") -> str:
    """What went wrong on purpose: ECS calls refused (and the latency added), a replica killed."""
    low, high = LATENCY
    refused = sum(1 for c in run.ecs.sandbox.calls if c["error"])
    ecs = f"{refused} ECS throttles ({THROTTLED:.0%}), {low * 1000:.0f}–{high * 1000:.0f} ms" if THROTTLED else ""
    return " + ".join(part for part in (ecs, more) if part) or "–"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # the kill -9 case runs on both
@pytest.mark.parametrize("run", REPLICAS, indirect=True, ids=[f"{n}-replicas" for n in REPLICAS])
def test_replicas_share_the_work_and_clicks_land_anywhere(run: Run) -> None:
    watch = StageWatch(run.ecs)
    watcher = threading.Thread(target=watch.run, daemon=True)
    watcher.start()
    try:
        run.deploy_all()
        _assert_answered(run)
        run.until_done()
    finally:
        watch.stop()
        watcher.join()
    found = outcome(run, watch)
    n = len(run.replicas)
    scenario = f"{n} replicas on PostgreSQL, clicks on another replica"
    _figures(run, found, scenario, _faults_label(run), f"make soak (test_replicas.py[{n}-replicas])")
    _assert_clean(run, found)
    assert len(run.clicked) == sum(2 if i % 3 == 0 else 1 if i % 3 == 1 else 0 for i in range(DEPLOYMENTS))


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("run", KILLED, indirect=True, ids=[f"{n}-replicas" for n in KILLED])
def test_a_replica_killed_while_approvals_wait_leaves_nothing_behind(run: Run) -> None:
    watch = StageWatch(run.ecs)
    watcher = threading.Thread(target=watch.run, daemon=True)
    watcher.start()
    approvals = sum(1 for i in range(DEPLOYMENTS) if i % 3 != 2)

    def killed_once_all_wait() -> bool:
        if not run.dead and run.waiting() == approvals:
            run.replicas[0].kill()  # it started a third of the deployments and may have posted any button
            run.dead.add(0)
        return bool(run.dead)

    try:
        run.deploy_all()
        _assert_answered(run)
        run.until_done(before_click=killed_once_all_wait)
    finally:
        watch.stop()
        watcher.join()
    found = outcome(run, watch)
    n, on = len(run.replicas), {"postgresql": "PostgreSQL", "sqlite": "SQLite"}[run.backend]
    scenario = f"{n} replicas on {on}, one killed (-9) while approvals wait"
    _figures(run, found, scenario, _faults_label(run, "1 kill -9"), "make soak (test_replicas.py::…killed…)")
    _assert_clean(run, found, survivors=run.replicas[1:])  # the dead one's log ends mid-line
