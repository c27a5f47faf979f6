"""Replicas of `deploybot run` as real processes on one database, and Slack acting towards them: signed commands and
clicks posted to the replica the test (as the load balancer) picks, each answer timed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlencode

from bot.slack.blocks import APPROVE_ACTION
from sandbox.slack import payloads
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, SlackSandboxHandle
from tests.reliability.conftest import Reply, post, sign

ROOT = Path(__file__).resolve().parents[2]
FORM = "application/x-www-form-urlencoded"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Replica:
    """One `deploybot run` process: its port, its log (JSON lines), and how to end it."""

    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes]
    out: IO[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is handed back."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, as ECS stops a task; SIGKILL if it does not end."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.out.close()

    def errors(self) -> list[str]:
        """Its ERROR lines (a listener that raised, a failed job), as logged."""
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [line for line in lines if '"level": "error"' in line or '"level":"error"' in line]

    def tail(self, n: int = 15) -> str:
        return "\n".join(self.log.read_text(encoding="utf-8", errors="replace").splitlines()[-n:])


def start_replicas(
    count: int,
    tmp: Path,
    database_url: str,
    catalog: Path,
    slack_api: str,
    ecs_url: str,
    poll: float,
    settings: dict[str, str] | None = None,
) -> list[Replica]:
    """`count` replicas started at once (each migrates, advisory-locked), returned once every one serves.

    Replica i calls ECS with access key `replica-i` (the sandbox can slow one caller); `settings` adds variables.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DEPLOYBOT_", "DATABASE_URL", "AWS_"))}
    env.update(
        {
            "DEPLOYBOT_CATALOG": str(catalog),
            "DEPLOYBOT_LOG_FORMAT": "json",
            "DEPLOYBOT_POLL_SECONDS": str(poll),
            "DATABASE_URL": database_url,
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
            "SLACK_API_URL": slack_api,
            "AWS_ENDPOINT_URL_ECS": ecs_url,
            "AWS_REGION": "us-east-1",
            "AWS_SECRET_ACCESS_KEY": "replica-test",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "PYTHONPATH": str(ROOT),
            **(settings or {}),
        }
    )
    replicas = []
    for i in range(count):
        port, log = free_port(), tmp / f"replica-{i}.log"
        out = log.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=tmp,
            env={**env, "PORT": str(port), "AWS_ACCESS_KEY_ID": access_key(i)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        replicas.append(Replica(f"replica-{i}", port, log, proc, out))
    deadline = time.monotonic() + 60
    for replica in replicas:
        while not replica.healthy():
            assert replica.proc.poll() is None, f"{replica.name} exited:\n{replica.tail()}"
            assert time.monotonic() < deadline, f"{replica.name} never served /healthz:\n{replica.tail()}"
            time.sleep(0.1)
    return replicas


def access_key(index: int) -> str:
    """The AWS access key id replica `index` calls ECS with (the sandbox logs it as the call's `caller`)."""
    return f"replica-{index}"


@dataclass
class Slack:
    """Slack's side of the requests: built by the stand-in's own payload builders, signed, posted to a replica."""

    stand_in: SlackSandboxHandle
    replies: list[tuple[str, Reply]] = field(default_factory=list)

    def _post(self, replica: Replica, fields: dict[str, str], what: str) -> Reply:
        body = urlencode(fields).encode()
        reply = post(replica.url, body, FORM, sign(DEFAULT_SIGNING_SECRET, body))
        self.replies.append((what, reply))
        return reply

    def command(self, replica: Replica, user: str, channel: str, text: str) -> Reply:
        """`/deploy text` typed by `user` in `channel`, delivered to `replica`."""
        store = self.stand_in.store
        rid = store.issue_response_url(user, channel, None, False)
        fields = payloads.command_fields(
            user,
            ws.ALL_CHANNELS[channel],
            "/deploy",
            text,
            response_url=f"{self.stand_in.url}/_sandbox/response/{rid}",
            trigger_id=store.issue_trigger(user),
        )
        return self._post(replica, fields, f"/deploy {text}")

    def approve_button(self, channel: str, ts: str) -> str | None:
        """The Approve button's value (`dep|hook`) on the message as Slack shows it now, if it has one."""
        message = self.stand_in.store.find_message(channel, ts)
        found = payloads.find_action((message or {}).get("blocks", []), APPROVE_ACTION)
        return str(found[1].get("value")) if found else None

    def click_approve(self, replica: Replica, user: str, channel: str, ts: str) -> Reply | None:
        """`user` clicks Approve on the message (and confirms), delivered to `replica`; None if it has no button."""
        store = self.stand_in.store
        message = store.find_message(channel, ts)
        found = payloads.find_action((message or {}).get("blocks", []), APPROVE_ACTION)
        if message is None or found is None:
            return None
        rid = store.issue_response_url(user, channel, ts, False)
        payload = payloads.message_actions(
            user,
            ws.ALL_CHANNELS[channel],
            message,
            ephemeral=False,
            action=payloads.action_json(found[0], found[1], {}),
            response_url=f"{self.stand_in.url}/_sandbox/response/{rid}",
            trigger_id=store.issue_trigger(user),
        )
        return self._post(replica, {"payload": json.dumps(payload)}, f"approve {found[1].get('value')}")


def metadata_key(message: dict[str, Any]) -> str | None:
    """The outbox idempotency key a bot message carries in its metadata."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") if isinstance(meta, dict) else None
    return str(payload["key"]) if isinstance(payload, dict) and "key" in payload else None
