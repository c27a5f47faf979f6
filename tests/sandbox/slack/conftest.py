"""Fixtures: a running stand-in, a real WebClient on it, and a signature-checking fake bot."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import server
from sandbox.slack.server import SlackSandboxHandle

SECRET = server.DEFAULT_SIGNING_SECRET
TOKEN = server.DEFAULT_BOT_TOKEN


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any, Any]:
    """A JSON request over real HTTP: (status, parsed body, headers)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, _parsed(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        return exc.code, _parsed(exc.read()), exc.headers


def _parsed(raw: bytes) -> Any:
    """JSON, or the text itself (an HTML error page, a response_url's bare code)."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode()


@dataclass
class Received:
    """One request the fake bot got."""

    path: str
    headers: dict[str, str]
    raw: bytes
    form: dict[str, str]
    payload: dict[str, Any] | None
    valid: bool
    valid_with_wrong_secret: bool


@dataclass
class FakeBot:
    """A tiny receiver: checks Slack's signature like Bolt, records requests, answers a set ack."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    ack_status: int = 200
    ack_body: str = ""
    ack_type: str = "application/json"
    on_request: Callable[[Received], object] | None = None  # run before answering (e.g. call the Web API)

    def ack(self, body: Any = "", status: int = 200) -> None:
        """Set what the bot answers next."""
        self.ack_body = body if isinstance(body, str) else json.dumps(body)
        self.ack_status = status

    @property
    def last(self) -> Received:
        """The most recent request."""
        return self.requests[-1]


def _parse(raw: bytes, content_type: str) -> tuple[dict[str, str], dict[str, Any] | None]:
    """Form fields and the JSON payload, however Slack encoded them."""
    if "json" in content_type:
        return {}, json.loads(raw)
    form = {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    return form, json.loads(form["payload"]) if "payload" in form else None


@pytest.fixture
def fake_bot() -> Iterator[FakeBot]:
    """A running fake bot on loopback."""
    bot = FakeBot()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            form, payload = _parse(raw, headers.get("Content-Type", ""))
            rec = Received(
                self.path,
                headers,
                raw,
                form,
                payload,
                SignatureVerifier(SECRET).is_valid_request(raw, headers),
                SignatureVerifier("not-the-secret").is_valid_request(raw, headers),
            )
            bot.requests.append(rec)
            if bot.on_request is not None:
                bot.on_request(rec)
            status = bot.ack_status if rec.valid else 401
            body = bot.ack_body.encode() if rec.valid else b""
            self.send_response(status)
            self.send_header("Content-Type", bot.ack_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    bot.url = f"http://127.0.0.1:{srv.server_address[1]}/slack/events"
    yield bot
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def sandbox() -> Iterator[SlackSandboxHandle]:
    """A running stand-in with no bot attached."""
    with server.start() as handle:
        yield handle


@pytest.fixture
def wired(sandbox: SlackSandboxHandle, fake_bot: FakeBot) -> SlackSandboxHandle:
    """A stand-in whose signed requests go to the fake bot."""
    sandbox.set_bot_url(fake_bot.url)
    return sandbox


@pytest.fixture
def client(sandbox: SlackSandboxHandle) -> WebClient:
    """The real slack_sdk client, pointed at the stand-in."""
    return WebClient(token=TOKEN, base_url=sandbox.api_url)
