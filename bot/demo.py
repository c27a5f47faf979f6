"""`deploybot demo`: the real bot on loopback, against the ECS sandbox and the Slack stand-in's page."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bot.config import Settings
from bot.domain.catalog.loader import Catalog, load_catalog
from bot.domain.enums import LogFormat
from bot.logs import configure_logging

DEMO_SIGNING_SECRET = "sandbox-signing-secret"  # noqa: S105 - a local stand-in's secret, not a real one
DEMO_TOKEN = "xoxb-sandbox-token"  # noqa: S105 - the stand-in only accepts this made-up token
CATALOG = Path(__file__).resolve().parents[1] / "services.example.yml"
# The README's walkthrough starts with this; the page suggests it from the first moment.
HINT = "/deploy catalog canary 10% image=:1.3.0"
# ECS's clock and the bot's run at the same (real) pace in the demo; it stays short because its bakes do
# (ECS counts bakes in whole minutes, so one minute is the shortest that still shows a bake).
DEMO_BAKE = timedelta(minutes=1)


class PortTaken(Exception):
    """The demo page's port cannot be listened on (in use, or not allowed)."""

    def __init__(self, port: int, reason: str) -> None:
        super().__init__(f"port {port}: {reason}")
        self.port = port
        self.reason = reason


@dataclass
class Demo:
    """The running demo: where to open the page, and the parts behind it."""

    page_url: str
    ecs_url: str
    bot_url: str
    bot: Any


def _panel(ecs_url: str, slack_url: str) -> list[dict[str, Any]]:
    command = f"{slack_url}/_sandbox/command"
    return [
        {
            "label": "🚨 Trip alarm catalog-5xx",
            "url": f"{ecs_url}/_sandbox/alarm",
            "body": {"name": "catalog-5xx", "state": "ALARM"},
        },
        {"label": "✅ Clear alarm", "url": f"{ecs_url}/_sandbox/alarm", "body": {"name": "catalog-5xx", "state": "OK"}},
        {
            "label": "💥 Deploy a broken image",
            "url": command,
            "body": {"user": "U0ALICE", "channel": "C0DEPLOYS", "text": "notifications bluegreen image=:broken-1.0"},
        },
    ]


def demo_catalog() -> Catalog:
    """The example catalog with every bake cut to DEMO_BAKE, so a canary finishes in about three minutes."""
    catalog = load_catalog(CATALOG)
    short = {
        key: replace(
            svc,
            bake=min(svc.bake, DEMO_BAKE),
            canary_bake=min(svc.canary_bake, DEMO_BAKE),
            step_bake=min(svc.step_bake, DEMO_BAKE),
        )
        for key, svc in catalog.services.items()
    }
    return replace(catalog, services=short)


def demo_settings(database: Path, slack_api_url: str, ecs_url: str) -> Settings:
    """Settings for the bot in the demo: the stand-ins' URLs, a SQLite file, fast polling."""
    return Settings(
        slack_bot_token=SecretStr(DEMO_TOKEN),
        slack_signing_secret=SecretStr(DEMO_SIGNING_SECRET),
        slack_api_url=slack_api_url,
        database_url=SecretStr(f"sqlite:///{database}"),
        catalog_path=CATALOG,
        poll_seconds=1.0,
        aws_region="us-east-1",
        aws_endpoint_url_ecs=ecs_url,
    )


def fresh_database(database: Path) -> None:
    """Start the demo's database empty, so that it and the sandboxes agree.

    The ECS sandbox and the Slack stand-in live in memory and start from their seeded world every time; a database
    kept from a previous run would follow deployments (and edit messages) that no longer exist. Resetting is the
    honest choice: persisting the sandboxes would mean saving a simulated ECS mid-plan, for a demo's history.
    """
    for path in (database, database.with_name(database.name + "-journal"), database.with_name(database.name + "-wal")):
        path.unlink(missing_ok=True)


@contextmanager
def running_demo(page_port: int = 0, speed: float = 1.0, data_dir: Path | None = None) -> Iterator[Demo]:
    """Start the ECS sandbox, the Slack stand-in and the bot; stop all three on exit.

    `speed` above 1 runs ECS's clock ahead of the bot's: only tests use it, to get through bakes quickly.
    """
    from bot.db import migrate
    from bot.runtime import build_context, start_http
    from sandbox.ecs.server import start as start_ecs
    from sandbox.slack.server import start as start_slack

    # boto3 needs credentials to sign requests, even for the sandbox: made-up ones, never real.
    for name, value in (("AWS_ACCESS_KEY_ID", "demo"), ("AWS_SECRET_ACCESS_KEY", "demo"), ("AWS_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    data_dir = data_dir or Path("demo-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    database = (data_dir / "deploybot.sqlite").resolve()
    fresh_database(database)
    with ExitStack() as stack:
        # The page's port first: if it is taken, nothing else has started.
        try:
            slack = start_slack(port=page_port, signing_secret=DEMO_SIGNING_SECRET, bot_token=DEMO_TOKEN)
        except OSError as exc:
            raise PortTaken(page_port, exc.strerror or str(exc)) from None
        stack.callback(slack.stop)
        ecs = stack.enter_context(start_ecs(port=0, speed=speed))
        settings = demo_settings(database, slack.api_url, ecs.url)
        ctx = build_context(settings, demo_catalog(), ecs_endpoint=ecs.url)
        migrate.upgrade(ctx.db)
        bot = start_http(ctx, port=0)
        stack.callback(bot.stop)
        slack.set_bot_url(f"{bot.url}/slack/events")
        slack.set_panel(_panel(ecs.url, slack.url))
        slack.set_hint(HINT)
        yield Demo(page_url=slack.url, ecs_url=ecs.url, bot_url=bot.url, bot=bot)


def run_demo(port: int, speed: float) -> int:
    """Run the demo until Ctrl-C (or SIGTERM), then stop everything."""
    configure_logging("INFO", LogFormat.CONSOLE, secrets=(DEMO_TOKEN, DEMO_SIGNING_SECRET))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with running_demo(page_port=port, speed=speed) as demo:
            print(f"DeployBot demo is up: open {demo.page_url}", flush=True)
            print(f"  Type `{HINT}` in #deploys as alice, then switch to bob to approve.")
            pace = "real time" if speed == 1 else f"×{speed:g} time"
            print(f"  ECS sandbox at {demo.ecs_url} ({pace}); bot at {demo.bot_url}. Ctrl-C stops everything.")
            with suppress(KeyboardInterrupt):
                stop.wait()
    except PortTaken as exc:
        # One line, no traceback: what went wrong and the flag that fixes it.
        other = 8081 if exc.port == 8080 else 8080
        print(
            f"deploybot demo: cannot listen on port {exc.port} ({exc.reason.lower()}); pick another with "
            f"`make demo PORT={other}` (or `deploybot demo --port {other}`)",
            file=sys.stderr,
        )
        return 1
    print("demo stopped")
    return 0
