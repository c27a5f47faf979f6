"""The real slack_bolt App, served over loopback HTTP, accepts what the stand-in sends and answers it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_bolt import Ack, App, BoltRequest, Respond
from slack_sdk import WebClient

from sandbox.slack import workspace as ws
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import SECRET, TOKEN, http
from tests.sandbox.slack.test_requests import BLOCKS, MODAL, control


def serve_bolt(app: App) -> tuple[ThreadingHTTPServer, str]:
    """Serve a Bolt app's dispatch on loopback, the way any HTTP adapter would."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            resp = app.dispatch(BoltRequest(body=body, headers={k: [v] for k, v in self.headers.items()}))
            data = resp.body.encode()
            self.send_response(resp.status)
            for key, values in resp.headers.items():
                for value in values:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}/slack/events"


@pytest.fixture
def bolt(sandbox: SlackSandboxHandle) -> Iterator[App]:
    """A Bolt app on the stand-in's Web API (auth.test runs at construction), receiving its requests."""
    app = App(
        token=TOKEN,
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=sandbox.api_url),
        process_before_response=True,
    )
    srv, url = serve_bolt(app)
    sandbox.set_bot_url(url)
    yield app
    srv.shutdown()
    srv.server_close()


def test_bolt_round_trip(sandbox: SlackSandboxHandle, bolt: App) -> None:
    @bolt.command("/deploy")
    def deploy(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        if not command["text"]:
            ack()
            client.views_open(trigger_id=command["trigger_id"], view=MODAL)
            return
        ack(f"Starting {command['text']}")
        client.chat_postMessage(channel=command["channel_id"], text="deploying", blocks=BLOCKS)

    @bolt.action("approve")
    def approve(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        respond(replace_original=True, text=f"Approved by <@{body['user']['id']}> ({body['actions'][0]['value']})")

    @bolt.view("deploy_modal")
    def submitted(ack: Ack, view: dict[str, Any]) -> None:
        reason = view["state"]["values"]["reason"]["text"]["value"]
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why"})
        else:
            ack()

    @bolt.event("app_home_opened")
    def home(event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(user_id=event["user"], view={"type": "home", "blocks": BLOCKS})

    out = control(sandbox, "command", {"user": ws.ALICE, "channel": "deploys", "text": "catalog canary 10%"})
    assert out["status"] == 200 and out["shown"]["text"] == "Starting catalog canary 10%"
    ts = sandbox.store.channels[ws.DEPLOYS_CHANNEL][0]["ts"]
    out = control(sandbox, "click", {"user": ws.BOB, "channel": "deploys", "message_ts": ts, "action_id": "approve"})
    assert out["status"] == 200
    # find_message is Optional; a missing message fails this assertion as a TypeError.
    assert sandbox.store.find_message(ws.DEPLOYS_CHANNEL, ts)["text"] == "Approved by <@U0BOB> (dep-1:hook-1)"  # type: ignore[index]

    control(sandbox, "command", {"user": ws.ALICE, "channel": "deploys", "text": ""})
    view_id = sandbox.store.user_views(ws.ALICE)["modals"][0]["id"]
    assert control(sandbox, "submit_view", {"user": ws.ALICE, "view_id": view_id})["outcome"] == "errors"
    assert (
        control(
            sandbox, "submit_view", {"user": ws.ALICE, "view_id": view_id, "values": {"reason": {"text": "hotfix"}}}
        )["outcome"]
        == "closed"
    )

    assert control(sandbox, "app_home_opened", {"user": ws.CAROL})["status"] == 200
    assert sandbox.store.user_views(ws.CAROL)["home"]["blocks"] == BLOCKS


def test_bolt_rejects_a_forged_signature(sandbox: SlackSandboxHandle, bolt: App) -> None:
    from sandbox.slack import server

    with server.start(bot_url=sandbox.bot_url, signing_secret="forged") as forger:
        out = control(forger, "command", {"user": ws.ALICE, "text": "catalog"})
    assert out["status"] == 401
    assert http("GET", f"{sandbox.url}/_sandbox/calls?method=chat.postMessage")[1]["calls"] == []
