"""`deploybot run` in Socket Mode, as a real process over a real websocket (the stand-in's, stdlib RFC 6455):
commands and events arrive on the socket and are acked there; SIGTERM and SIGINT stop it cleanly (issue 11, item 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.db.sessions import make_engine, session_factory
from bot.domain.enums import OutboxState
from models import Deployment, Outbox
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_APP_TOKEN, DEFAULT_BOT_TOKEN, SlackSandboxHandle, start
from tests.e2e_support import http_json, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stand_ins() -> Iterator[tuple[SlackSandboxHandle, str]]:
    from sandbox.ecs.server import start as start_ecs

    with start(port=0) as slack, start_ecs(port=0, speed=50.0) as ecs:
        yield slack, ecs.url


def control(slack: SlackSandboxHandle, name: str, body: dict[str, Any]) -> dict[str, Any]:
    status, data = http_json(f"{slack.url}/_sandbox/{name}", body)
    assert status == 200, data
    return dict(data)


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_socket_mode_round_trip_then_a_clean_stop(
    stand_ins: tuple[SlackSandboxHandle, str], tmp_path: Path, stop_with: signal.Signals
) -> None:
    slack, ecs_url = stand_ins
    database = f"sqlite:///{tmp_path}/socket.sqlite"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DEPLOYBOT_", "DATABASE_URL", "AWS_"))}
    env.update(
        SLACK_BOT_TOKEN=DEFAULT_BOT_TOKEN,
        SLACK_APP_TOKEN=DEFAULT_APP_TOKEN,
        SLACK_API_URL=slack.api_url,
        DATABASE_URL=database,
        DEPLOYBOT_CATALOG=str(ROOT / "services.example.yml"),
        DEPLOYBOT_POLL_SECONDS="1",
        AWS_ENDPOINT_URL_ECS=ecs_url,
        AWS_ACCESS_KEY_ID="test",
        AWS_SECRET_ACCESS_KEY="test",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for(lambda: slack.hub.connected or proc.poll() is not None, 60, "the bot's websocket")
        assert proc.poll() is None, log.read_text()
        assert slack.bot_url is None  # nothing reaches it over HTTP: every request below goes over the socket

        typo = control(slack, "command", {"user": ws.ALICE, "text": "catalgo canary 10%"})
        assert typo["status"] == 200 and "Did you mean `catalog`" in typo["shown"]["text"]  # the ack, on the socket
        control(slack, "app_home_opened", {"user": ws.BOB})  # an events_api envelope with retry_attempt 0
        wait_for(lambda: slack.store.calls_for("views.publish"), 30, "the Home tab published")
        started = control(slack, "command", {"user": ws.ALICE, "text": "orders"})
        assert started["shown"] is None  # an empty ack: the answer below is the first thing shown
        wait_for(lambda: any(m["text"].startswith("Deployment #") for m in _ephemerals(slack)), 30, "the answer")
        wait_for(lambda: slack.store.snapshot()["channels"].get(ws.DEPLOYS_CHANNEL), 30, "the root message")

        proc.send_signal(stop_with)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    assert "deploybot stopped cleanly" in output and "Socket Mode connection closed" in output
    assert "retry 0" not in output  # Socket Mode's first deliveries carry x-slack-retry-num: 0
    wait_for(lambda: not slack.hub.connected, 10, "the socket closed")
    engine = make_engine(database)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 1
        in_doubt = session.scalar(select(func.count()).select_from(Outbox).where(Outbox.state == OutboxState.SENDING))
        assert in_doubt == 0  # no claim left behind for a successor to treat as "unsure"
    engine.dispose()


def _ephemerals(slack: SlackSandboxHandle) -> list[dict[str, Any]]:
    return list(slack.store.snapshot()["ephemerals"].get(ws.ALICE, []))


def test_the_stand_in_refuses_the_bot_token_for_a_socket_and_the_app_token_for_anything_else(
    stand_ins: tuple[SlackSandboxHandle, str],
) -> None:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    slack, _ = stand_ins
    with pytest.raises(SlackApiError) as bot:
        WebClient(token=DEFAULT_BOT_TOKEN, base_url=slack.api_url).apps_connections_open(app_token=DEFAULT_BOT_TOKEN)
    assert bot.value.response["error"] == "not_allowed_token_type"
    url = WebClient(base_url=slack.api_url).apps_connections_open(app_token=DEFAULT_APP_TOKEN)["url"]
    assert url.startswith("ws://127.0.0.1:") and "/link?ticket=" in url
    with pytest.raises(SlackApiError) as app:
        WebClient(token=DEFAULT_APP_TOKEN, base_url=slack.api_url).chat_postMessage(channel="C0DEPLOYS", text="x")
    assert app.value.response["error"] == "not_allowed_token_type"
