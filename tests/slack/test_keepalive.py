"""Slack calls over kept-alive connections: one connection for many calls, the same answers and errors as urllib's."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.clients import web_client
from bot.slack.errors import classify


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    close_after_answer = False  # answer with `Connection: close` and close
    idle_timeout: float | None = None  # drop a connection idle for this long, without a word (as servers do)
    status = 200
    seen: list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1
        self.request.settimeout(self.server.idle_timeout)  # BaseHTTPRequestHandler closes on a read timeout

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.seen.append({"path": self.path, "auth": self.headers.get("authorization"), "body": body})
        status = self.server.status
        answer = (
            {"ok": True, "ts": "1.000001", "channel": "C1"} if status == 200 else {"ok": False, "error": "ratelimited"}
        )
        out = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json; charset=utf-8")
        self.send_header("content-length", str(len(out)))
        if status == 429:
            self.send_header("Retry-After", "7")
        if self.server.close_after_answer:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.seen = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _client(server: _Server) -> WebClient:
    return web_client("xoxb-test", f"http://127.0.0.1:{server.server_address[1]}/api/")


def test_calls_from_one_thread_share_one_connection(server: _Server) -> None:
    client = _client(server)
    for i in range(5):
        assert client.chat_postMessage(channel="C1", text=f"hello {i}")["ts"] == "1.000001"
    assert server.connections == 1  # urllib opened one per call
    assert [s["path"] for s in server.seen] == ["/api/chat.postMessage"] * 5
    assert all(s["auth"] == "Bearer xoxb-test" for s in server.seen)
    assert [json.loads(s["body"])["text"] for s in server.seen] == [f"hello {i}" for i in range(5)]


def test_a_connection_the_server_closes_is_not_reused(server: _Server) -> None:
    server.close_after_answer = True
    client = _client(server)
    for _ in range(3):
        assert client.chat_postMessage(channel="C1", text="hello")["ok"] is True
    assert server.connections == 3 and len(server.seen) == 3  # each call sent once, none failed


def test_a_connection_the_server_dropped_while_idle_is_replaced_before_the_next_call(server: _Server) -> None:
    server.idle_timeout = 0.2
    client = _client(server)
    assert client.chat_postMessage(channel="C1", text="one")["ok"] is True
    time.sleep(0.6)  # the server has dropped it by now (its end-of-file is waiting on our side)
    assert client.chat_postMessage(channel="C1", text="two")["ok"] is True
    assert server.connections == 2 and [json.loads(s["body"])["text"] for s in server.seen] == ["one", "two"]


def test_each_thread_has_its_own_connection(server: _Server) -> None:
    client = _client(server)
    results: list[bool] = []

    def post() -> None:
        results.extend(bool(client.chat_postMessage(channel="C1", text="x")["ok"]) for _ in range(3))

    threads = [threading.Thread(target=post) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 9 and server.connections == 3


def test_a_429_reads_as_urllib_gave_it(server: _Server) -> None:
    server.status = 429
    with pytest.raises(SlackApiError) as caught:
        _client(server).chat_postMessage(channel="C1", text="hello")
    failure = classify(caught.value)
    assert failure.retry_after == 7 and failure.code == "ratelimited"


def test_nobody_listening_is_a_failure_before_sending() -> None:
    client = web_client("xoxb-test", "http://127.0.0.1:9/api/")
    with pytest.raises(Exception) as caught:
        client.chat_postMessage(channel="C1", text="hello")
    assert classify(caught.value).kind.name == "RETRY"  # never sent: no look-up needed before trying again
