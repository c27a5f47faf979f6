"""End-to-end harness: the bot's HTTP server, the ECS sandbox and the Slack stand-in, all on loopback."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from slack_sdk.models.blocks import Block
from sqlalchemy import select

from bot.config import Settings
from bot.db import migrate
from bot.domain.enums import DeploymentStatus, OutboxState
from bot.domain.readmodels import DeploymentView
from bot.runtime import RunningBot, build_context, start_http
from bot.slack.clients import web_client
from bot.slack.context import BotContext
from bot.slack.sender import OutboxSender
from models import Outbox, utcnow
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, SlackSandboxHandle
from tests.support import Control, drive_until, example_catalog

T = TypeVar("T")
CATALOG = example_catalog()


def http_json(
    url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, Any]:
    """POST JSON (or `raw`) or GET; return status and the parsed body (text if not JSON)."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def wait_for(probe: Callable[[], T | None], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `probe` until it returns something truthy (the listener works after its ack, on Bolt's pool)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@dataclass
class World:
    """One running bot (on one database) wired to the shared sandboxes."""

    bot: RunningBot
    slack: SlackSandboxHandle
    ecs: Control
    sender: OutboxSender

    @property
    def ctx(self) -> BotContext:
        return self.bot.ctx

    # Acting as Slack users, through the stand-in (which signs and POSTs to the bot) -------------------------
    def control(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        status, data = http_json(f"{self.slack.url}/_sandbox/{name}", body)
        assert status == 200, data
        return dict(data)

    def command(self, user: str, text: str, channel: str = "C0DEPLOYS") -> dict[str, Any]:
        return self.control("command", {"user": user, "channel": channel, "text": text})

    def click(
        self, user: str, message_ts: str, action_id: str, channel: str = "C0DEPLOYS", **overrides: Any
    ) -> dict[str, Any]:
        return self.control(
            "click", {"user": user, "channel": channel, "message_ts": message_ts, "action_id": action_id, **overrides}
        )

    # Reading the stand-in -----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return self.slack.store.snapshot()

    def messages(self, channel: str = "C0DEPLOYS") -> list[dict[str, Any]]:
        return list(self.snapshot()["channels"].get(channel, []))

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        return list(self.snapshot()["ephemerals"].get(user, []))

    def calls(self, method: str) -> list[dict[str, Any]]:
        return self.slack.store.calls_for(method)

    def ephemeral_with(self, user: str, needle: str, timeout: float = 10.0) -> dict[str, Any]:
        """Wait for an ephemeral to `user` containing `needle`."""
        return wait_for(
            lambda: next((m for m in self.ephemerals(user) if needle in m["text"]), None),
            timeout,
            f"an ephemeral to {user} saying {needle!r}",
        )

    def told(self, user: str, needle: str, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until `user` has had `count` ephemerals containing `needle` (the listener has finished)."""
        wait_for(
            lambda: len([m for m in self.ephemerals(user) if needle in m["text"]]) >= count,
            timeout,
            what=f"{count} ephemeral(s) to {user} saying {needle!r}",
        )

    def root(self, dep_id: int) -> dict[str, Any]:
        view = self.view(dep_id)
        assert view.root_ts, "the root message was never posted"
        found = self.slack.store.find_message(view.channel_id, view.root_ts)
        assert found is not None
        return found

    def thread(self, dep_id: int) -> list[dict[str, Any]]:
        view = self.view(dep_id)
        return [
            m for m in self.messages(view.channel_id) if m.get("thread_ts") == view.root_ts and m["ts"] != view.root_ts
        ]

    # Driving time ------------------------------------------------------------------------------------------
    def view(self, dep_id: int) -> DeploymentView:
        view = self.ctx.usecases.deployments.view(dep_id, with_events=True)
        assert view is not None
        return view

    def drain(self) -> None:
        """Send everything the outbox holds (the notify job's work, run here for determinism)."""
        for _ in range(50):
            if not self.sender.drain_once() and not self.pending():
                return
        raise AssertionError("the outbox never emptied")

    def pending(self) -> int:
        with self.ctx.sessions() as session:
            rows = session.scalars(select(Outbox).where(Outbox.state.in_((OutboxState.PENDING, OutboxState.SENDING))))
            return len(list(rows))

    def run_until(self, dep_id: int, done: Callable[[DeploymentView], bool], limit: int = 400) -> DeploymentView:
        """Reconcile and drain, then jump the ECS sandbox to its next wake-up, until `done` holds."""

        def step() -> None:
            self.ctx.usecases.reconciler.reconcile_once()
            self.drain()

        return drive_until(self.ecs, step, lambda: self.view(dep_id), done, limit)

    def started(self, user: str = "U0ALICE", timeout: float = 10.0) -> int:
        """The deployment a command just asked for, once the listener has started it on ECS."""

        def probe() -> int | None:
            views = [v for v in self.ctx.usecases.deployments.history_for_user(user, 1) if v.ecs_deployment_arn]
            return views[0].id if views else None

        return wait_for(probe, timeout, what=f"a deployment started by {user}")


def awaiting(view: DeploymentView) -> bool:
    return view.status is DeploymentStatus.AWAITING_APPROVAL


def check_message(message: dict[str, Any]) -> None:
    """Every message carries `text`, and its blocks are valid Block Kit by slack_sdk's own limits."""
    assert message.get("text"), message
    for raw in message.get("blocks") or []:
        block = Block.parse(raw)
        assert block is not None, raw
        block.to_dict()  # raises SlackObjectFormationError when a limit is broken


@contextmanager
def running_world(
    database_url: str, slack: SlackSandboxHandle, ecs_url: str, clock: Callable[[], datetime] = utcnow
) -> Iterator[World]:
    """A migrated database, a bot serving HTTP on loopback (on `clock`), and the stand-in pointed at it."""
    settings = Settings(
        slack_bot_token=DEFAULT_BOT_TOKEN,
        slack_signing_secret=DEFAULT_SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=database_url,
    )
    ctx = build_context(settings, CATALOG, ecs_endpoint=ecs_url, clock=clock)
    migrate.upgrade(ctx.db)
    # Jobs off: the tests run reconcile and drain passes themselves, so every step is deterministic.
    bot = start_http(ctx, run_jobs=False)
    slack.set_bot_url(f"{bot.url}/slack/events")
    # No pacing between posts: the stand-in's rate limit is off, and waiting a second per message is slow.
    sender = OutboxSender(
        ctx.sessions,
        web_client(DEFAULT_BOT_TOKEN, slack.api_url),
        CATALOG,
        clock=ctx.clock,
        owner="e2e",
        post_interval=0,
        update_interval=0,
    )
    try:
        yield World(bot, slack, Control(ecs_url), sender)
    finally:
        slack.set_bot_url(None)
        bot.stop()
