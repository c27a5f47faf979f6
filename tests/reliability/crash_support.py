"""The crash scenarios' equipment: `deploybot run` as a real process (killed with SIGKILL, started again on the same
database), signed commands and clicks over HTTP, and an ECS driver that moves the sandbox's clock only once the bot
has seen ECS's latest state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.db.store import view_of
from bot.domain.enums import DeploymentStatus, OutboxState
from bot.domain.readmodels import DeploymentView
from bot.slack.blocks import APPROVE_ACTION
from models import Decision, Deployment, Outbox
from sandbox.ecs.app import Sandbox
from sandbox.ecs.server import SandboxHandle
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, SlackSandboxHandle
from tests.e2e_support import wait_for
from tests.reliability import mutate
from tests.reliability.conftest import Reply, post, sign
from tests.support import Control
from tests.test_run_cli import free_port

ROOT = Path(__file__).resolve().parents[2]
POLL_SECONDS = 0.25
FORM = "application/x-www-form-urlencoded"
CHANNEL = "C0DEPLOYS"


@dataclass
class BotProcess:
    """`deploybot run` on one database, as the task definition runs it; each start is a new process (a new owner)."""

    database_url: str
    slack: SlackSandboxHandle
    ecs_url: str
    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    starting: float = 0.0  # seconds the last start took until /healthz answered (a loaded machine imports slowly)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DEPLOYBOT_", "DATABASE_URL"))}
        return env | {
            "PORT": str(self.port),
            "DEPLOYBOT_CATALOG": str(ROOT / "services.example.yml"),
            "DEPLOYBOT_LOG_FORMAT": "json",
            "DEPLOYBOT_POLL_SECONDS": str(POLL_SECONDS),
            "DATABASE_URL": self.database_url,
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "AWS_ENDPOINT_URL_ECS": self.ecs_url,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> float:
        """Start a new process and wait until it serves /healthz; when (wall clock) it was started."""
        assert self.proc is None or self.proc.poll() is not None, "the previous process still runs"
        self.starts += 1
        log = (self.workdir / f"bot-{self.starts}.log").open("wb")
        started = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=self.workdir, env=self._env(), stdout=log, stderr=log
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            assert self.proc.poll() is None, self.log_tail()
            assert time.monotonic() < deadline, "deploybot run never served /healthz"
            time.sleep(0.05)
        self.slack.set_bot_url(f"{self.url}/slack/events")
        self.starting = time.time() - started
        return started

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is handed back, every claim it held is left as it was."""
        assert self.proc is not None and self.proc.poll() is None, self.log_tail()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def close(self) -> None:
        """End whatever still runs (the test is over)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)

    def log_tail(self) -> str:
        """The last lines the current process wrote, for an assertion message."""
        path = self.workdir / f"bot-{self.starts}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def errors(self) -> list[str]:
        """Every ERROR line any of the processes logged."""
        found: list[str] = []
        for path in sorted(self.workdir.glob("bot-*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if '"level": "error"' in line or '"level":"error"' in line:
                    found.append(line)
        return found


@dataclass
class Crash:
    """The operator's side: Slack users acting over signed HTTP, the Slack stand-in read, ECS driven."""

    bot: BotProcess
    slack: SlackSandboxHandle
    ecs: Control
    sandbox: Sandbox  # the same ECS sandbox, read in-process (its call log is long)
    sessions: sessionmaker[Session]
    acks: list[float] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)  # deployments already handed out by deployment_for
    wakes: list[float] = field(default_factory=list)  # when the driver moved ECS's clock (wall clock)
    _describes_at_wake: int = 0

    # Acting over HTTP -------------------------------------------------------------------------------------------
    def _send(self, raw: bytes) -> Reply:
        reply = post(f"{self.bot.url}/slack/events", raw, FORM, sign(DEFAULT_SIGNING_SECRET, raw))
        assert reply.status == 200, (reply.status, reply.body)
        self.acks.append(reply.seconds)
        return reply

    def command(self, text: str, user: str = "U0ALICE") -> Reply:
        """A signed `/deploy` as Slack sends it."""
        return self._send(urlencode(mutate.command(text, user=user, channel=CHANNEL)).encode())

    def click_payload(self, message: dict[str, Any], user: str, action_id: str = APPROVE_ACTION) -> bytes:
        """The form body Slack would send for `user` clicking a button of `message` as it is now."""
        for block in message.get("blocks") or []:
            for element in block.get("elements") or [] if block.get("type") == "actions" else []:
                if element.get("action_id") == action_id:
                    click = mutate.click(action_id, user=user)
                    click["container"]["message_ts"] = message["ts"]
                    click["message"] = {"ts": message["ts"], "blocks": message["blocks"], "text": message["text"]}
                    click["actions"][0].update(block_id=block["block_id"], value=element["value"])
                    return urlencode({"payload": json.dumps(click)}).encode()
        raise AssertionError(f"no {action_id} button on the message: {message.get('text')}")

    def click(self, raw: bytes) -> Reply:
        """Deliver a click (signed now, as Slack signs each delivery)."""
        return self._send(raw)

    # Reading ----------------------------------------------------------------------------------------------------
    def view(self, dep_id: int) -> DeploymentView:
        with self.sessions() as session:
            return view_of(session, session.get_one(Deployment, dep_id))

    def deployment_for(self, service: str) -> int:
        """The deployment of `service` a command just asked for, once it exists (not an earlier round's)."""
        found = wait_for(lambda: self._newest(service), 20, f"a new deployment of {service}")
        self.seen.add(found)
        return found

    def _newest(self, service: str) -> int | None:
        with self.sessions() as session:
            found = session.scalars(
                select(Deployment.id).where(Deployment.service_key == service).order_by(Deployment.id.desc())
            ).first()
            return found if found not in self.seen else None

    def root(self, dep_id: int) -> dict[str, Any]:
        root_ts = wait_for(lambda: self.view(dep_id).root_ts, 20, f"#{dep_id}'s root message")
        found = self.slack.store.find_message(CHANNEL, root_ts)
        assert found is not None
        return found

    def thread(self, dep_id: int) -> list[dict[str, Any]]:
        root_ts = self.view(dep_id).root_ts
        return [m for m in self.channel() if m.get("thread_ts") == root_ts and m["ts"] != root_ts]

    def channel(self) -> list[dict[str, Any]]:
        return list(self.slack.store.snapshot()["channels"].get(CHANNEL, []))

    def duplicated_posts(self) -> int:
        """Messages in Slack beyond the first for one outbox key (the key travels in each post's metadata)."""
        keys = Counter(
            (m.get("metadata") or {}).get("event_payload", {}).get("key") for m in self.channel() if m.get("metadata")
        )
        return sum(n - 1 for n in keys.values())

    def unsent(self) -> list[str]:
        """Outbox rows not sent (nothing may stay queued, in doubt, or be given up once deployments end)."""
        with self.sessions() as session:
            rows = session.scalars(select(Outbox).where(Outbox.state != OutboxState.SENT))
            return [f"{r.idempotency_key}: {r.state} {r.last_error}" for r in rows]

    def root_edits_since(self, dep_id: int, since: float) -> list[dict[str, Any]]:
        """chat.update calls on the root message that ended after `since` (wall clock)."""
        root_ts = self.view(dep_id).root_ts
        return [
            c
            for c in self.slack.store.calls_for("chat.update")
            if c["ok"] and c["params"].get("ts") == root_ts and c["time"] > since
        ]

    # Driving ECS ------------------------------------------------------------------------------------------------
    def describes(self) -> int:
        return sum(1 for c in list(self.sandbox.calls) if c["operation"] == "DescribeServiceDeployments")

    def ecs_calls(self, operation: str) -> list[dict[str, Any]]:
        """ECS calls of `operation` that ECS carried out."""
        return [c for c in list(self.sandbox.calls) if c["operation"] == operation and c["applied"]]

    def _may_wake(self) -> bool:
        # Two describes since the last jump: the first pass after it has written what it saw. A pause the bot shows
        # and nobody decided is never jumped over (its next wake-up is its timeout).
        if self.describes() < self._describes_at_wake + 2:
            return False
        with self.sessions() as session:
            waiting = [view_of(session, d) for d in session.scalars(select(Deployment))]
            applied = {(d.deployment_id, d.hook_id) for d in session.scalars(select(Decision)) if d.applied_at}
        # Nor while a deployment is not started yet: its first stages would be jumped over by another's bake.
        return not any(
            view.status is DeploymentStatus.REQUESTED
            or (
                view.status is DeploymentStatus.AWAITING_APPROVAL
                and (not view.awaiting or (view.id, view.awaiting[0].hook_id) not in applied)
            )
            for view in waiting
        )

    def _wake(self) -> bool:
        with self.sessions() as session:
            arns = [d.ecs_deployment_arn for d in session.scalars(select(Deployment)) if d.ecs_deployment_arn]
        states = [self.ecs.get(f"state?deployment={arn}") for arn in arns]
        wakes = [s["nextWakeAt"] - s["now"] for s in states if s["nextWakeAt"] is not None]
        if not wakes:
            return False
        self._describes_at_wake = self.describes()
        self.wakes.append(time.time())
        self.ecs.advance(max(0.0, min(wakes)) + 0.001)
        return True

    def drive(self, done: Callable[[], bool], what: str, timeout: float = 60) -> None:
        """Move ECS from wake-up to wake-up, each once the bot has seen the last, until `done` holds."""
        deadline = time.monotonic() + timeout
        while not done():
            assert time.monotonic() < deadline, f"timed out driving ECS until {what}\n{self.bot.log_tail()}"
            if self.bot.proc is not None and self.bot.proc.poll() is None and self._may_wake():
                self._wake()
            time.sleep(0.05)

    def until_status(self, dep_id: int, *statuses: DeploymentStatus) -> Callable[[], bool]:
        return lambda: self.view(dep_id).status in statuses


def buttons(message: dict[str, Any]) -> set[str]:
    """The action ids of a message's buttons."""
    return {e["action_id"] for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]}


def crash_rig(
    database_url: str, slack: SlackSandboxHandle, ecs: SandboxHandle, sessions: sessionmaker[Session], workdir: Path
) -> Iterator[Crash]:
    """A fresh stand-in and ECS, a bot process on the database; everything put back afterwards."""
    slack.store.reset()
    control = Control(ecs.url)
    control.post("reset")
    control.post("speed", {"speed": 0})
    behind = time.time() - control.now().timestamp()
    if behind > 0:
        control.advance(behind)  # the module's ECS clock started a while ago: bring it to the bot's now
    bot = BotProcess(database_url, slack, ecs.url, workdir)
    try:
        yield Crash(bot, slack, control, ecs.sandbox, sessions)
    finally:
        bot.close()
        slack.set_bot_url(None)
        http_settings(slack, {"latency": 0, "latency_methods": []})


def http_settings(slack: SlackSandboxHandle, body: dict[str, Any]) -> None:
    """The stand-in's control API: latency, faults…"""
    request = urllib.request.Request(
        f"{slack.url}/_sandbox/settings", data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
