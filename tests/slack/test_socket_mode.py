"""Socket Mode wiring, as far as it can be tested without Slack: the handler builds on our app without connecting,
and Socket Mode envelopes reach the same listeners without signatures (the Web API is the local stand-in)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from slack_bolt import App, BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.app import build_app
from bot.config import Settings
from bot.db import migrate
from bot.runtime import build_context
from sandbox.slack import payloads
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, SlackSandboxHandle, start
from tests.support import example_catalog

APP_TOKEN = "xapp-1-A0DEPLOYBOT-0-offline"


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackSandboxHandle]:
    with start(port=0) as handle:
        yield handle


@pytest.fixture
def app(slack: SlackSandboxHandle, tmp_path: Path) -> Iterator[App]:
    # Socket Mode settings: an app-level token and no signing secret at all.
    settings = Settings(
        slack_bot_token=DEFAULT_BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=slack.api_url,
        database_url=f"sqlite:///{tmp_path}/socket.sqlite",
    )
    ctx = build_context(settings, example_catalog())
    migrate.upgrade(ctx.db)
    slack.store.reset()
    yield build_app(ctx)
    ctx.db.dispose()


def command_payload(slack: SlackSandboxHandle, text: str) -> dict[str, Any]:
    channel = ws.ALL_CHANNELS[ws.DEPLOYS_CHANNEL]
    rid = slack.store.issue_response_url(ws.ALICE, channel.id, None, False)
    return payloads.command_fields(
        ws.ALICE,
        channel,
        "/deploy",
        text,
        response_url=f"{slack.url}/_sandbox/response/{rid}",
        trigger_id=slack.store.issue_trigger(ws.ALICE),
    )


def test_the_handler_builds_on_the_app_without_connecting(app: App) -> None:
    handler = SocketModeHandler(app, APP_TOKEN)
    assert handler.app is app and handler.client.app_token == APP_TOKEN
    assert handler.client.web_client is app.client  # the stand-in's base_url and no sleeping retry handlers
    assert handler.handle in handler.client.socket_mode_request_listeners
    assert not handler.client.is_connected()


def test_a_slash_command_envelope_is_acked_over_the_socket(
    app: App, slack: SlackSandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = SocketModeHandler(app, APP_TOKEN)
    sent: list[SocketModeResponse] = []
    monkeypatch.setattr(handler.client, "send_socket_mode_response", sent.append)
    request = SocketModeRequest(
        type="slash_commands", envelope_id="env-1", payload=command_payload(slack, "catalgo canary 10%")
    )
    handler.handle(handler.client, request)
    assert [r.envelope_id for r in sent] == ["env-1"]
    assert "Did you mean `catalog`" in str(sent[0].payload)


def test_socket_mode_requests_reach_the_listeners_without_signatures(app: App, slack: SlackSandboxHandle) -> None:
    response = app.dispatch(BoltRequest(body=command_payload(slack, "help"), mode="socket_mode"))
    assert response.status == 200
    event = payloads.app_home_opened(ws.BOB, None)
    assert app.dispatch(BoltRequest(body=event, mode="socket_mode")).status == 200
    _wait(lambda: slack.store.calls_for("views.publish") and slack.store.snapshot()["ephemerals"].get(ws.ALICE))
    help_answer = slack.store.snapshot()["ephemerals"][ws.ALICE][0]
    assert help_answer["text"].startswith("DeployBot help")
    assert slack.store.calls_for("views.publish")[0]["params"]["user_id"] == ws.BOB


def test_the_same_body_over_http_without_a_signature_is_refused(app: App) -> None:
    event = json.dumps(payloads.app_home_opened(ws.BOB, None))
    headers: dict[str, str | Sequence[str]] = {"content-type": "application/json"}
    assert app.dispatch(BoltRequest(body=event, headers=headers, mode="http")).status == 401


def _wait(probe: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
