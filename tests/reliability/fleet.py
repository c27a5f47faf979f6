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
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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
# The bot's refusals that tell the person to try again, as they read (handlers/work.py BUSY and STOPPING, "I
# couldn't check with Slack whether I can post here…" in bot/domain/narration.py): a person would, after a pause.
TRY_AGAIN = "try again"
WORKING = "Working on it…"  # said when an answer is late; the answer follows it
ANSWER_WITHIN = 30.0  # seconds a person waits for the answer to a /deploy before calling it silent
# Once told "Working on it…", a person waits longer for the answer: a start that meets throttling, a killed peer's
# lease and a loaded machine is slow, not lost (the figures show the slowest answer).
WORKING_WITHIN = 120.0
RETRY_PAUSE = 2.0  # seconds a person waits before typing the command again
RETRIES = 5


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

    def command(self, replica: Replica, user: str, channel: str, text: str, rid: str | None = None) -> Reply:
        """`/deploy text` typed by `user` in `channel`, delivered to `replica` (answered through response_url `rid`)."""
        store = self.stand_in.store
        rid = rid or store.issue_response_url(user, channel, None, False)
        fields = payloads.command_fields(
            user,
            ws.ALL_CHANNELS[channel],
            "/deploy",
            text,
            response_url=f"{self.stand_in.url}/_sandbox/response/{rid}",
            trigger_id=store.issue_trigger(user),
        )
        return self._post(replica, fields, f"/deploy {text}")

    def deploy(self, pick: Callable[[int], Replica], user: str, channel: str, text: str) -> Asked:
        """`/deploy text` as a person sends it: read the ack and the answer; told to try again, again after a pause
        (`pick(try)` is the replica the load balancer hands each try to). No answer at all: `Asked.silent`."""
        asked = Asked(text, channel)
        for attempt in range(RETRIES + 1):
            replica = pick(attempt)
            rid = self.stand_in.store.issue_response_url(user, channel, None, False)
            sent = time.monotonic()
            reply = self.command(replica, user, channel, text, rid)
            tried = Try(replica.name, reply.status, reply.body.decode(errors="replace"), rid)
            asked.tries.append(tried)
            if reply.status == 200 and not tried.ack.strip():
                tried.answers = self.answers(rid, wait=ANSWER_WITHIN)
                tried.seconds = time.monotonic() - sent
            if TRY_AGAIN not in " ".join([tried.ack, *tried.answers]).lower():
                return asked
            time.sleep(RETRY_PAUSE)
        return asked

    def answers(self, rid: str, wait: float = 0.0) -> list[str]:
        """What came to a response_url (HTTP status and text of each POST), waiting up to `wait` s for one that is
        not "Working on it…" (up to WORKING_WITHIN s once "Working on it…" came)."""
        started = time.monotonic()
        while True:
            with self.stand_in.store.lock:
                posts = [r for r in self.stand_in.store.responses if r["url"] == rid]
            said = [f"{r['status']} {r['text']}" for r in posts]
            working = any(r["stored"] and r["text"] == WORKING for r in posts)
            limit = max(wait, WORKING_WITHIN) if working and wait else wait
            if any(r["stored"] and r["text"] != WORKING for r in posts) or time.monotonic() - started >= limit:
                return said
            time.sleep(0.1)

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


@dataclass
class Try:
    """One delivery of a command: the replica, its ack (status, body) and what came to its response_url."""

    replica: str
    status: int
    ack: str
    response_url: str
    answers: list[str] = field(default_factory=list)
    seconds: float = 0.0  # from sending the command to its answer (or to giving up on one)


@dataclass
class Asked:
    """One command a person gave, with every try it took."""

    text: str
    channel: str
    tries: list[Try] = field(default_factory=list)

    @property
    def retries(self) -> int:
        return len(self.tries) - 1

    @property
    def silent(self) -> bool:
        """Acked without a word, and nothing came to its response_url."""
        last = self.tries[-1]
        return last.status == 200 and not last.ack.strip() and not last.answers

    def said(self) -> str:
        """The last thing the person was told."""
        last = self.tries[-1]
        return last.answers[-1] if last.answers else f"{last.status} {last.ack}"


def evidence(tmp: Path, replicas: list[Replica], asked: list[Asked], about: list[str]) -> str:
    """Kept for a failure: every command's tries written to `tmp/commands.json` (the replicas' logs are beside it),
    and, for the message, the tries of the commands naming any of `about` and each log's lines that name them."""
    path = tmp / "commands.json"
    path.write_text(json.dumps([asdict(a) for a in asked], indent=1, ensure_ascii=False), encoding="utf-8")
    lines = [f"commands: {path}; logs: {', '.join(str(r.log) for r in replicas)}"]
    for a in asked:
        if any(word in a.text for word in about):
            tries = [f"{t.replica} {t.status} {t.ack!r} → {t.answers}" for t in a.tries]
            lines.append(f"{a.text} in {a.channel}: " + " | ".join(tries))
    for replica in replicas:
        named = [x for x in replica.log.read_text(errors="replace").splitlines() if any(w in x for w in about)]
        lines += [f"{replica.name}: {x[:400]}" for x in named[-12:]]
    return "\n".join(lines)


def metadata_key(message: dict[str, Any]) -> str | None:
    """The outbox idempotency key a bot message carries in its metadata."""
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") if isinstance(meta, dict) else None
    return str(payload["key"]) if isinstance(payload, dict) and "key" in payload else None
