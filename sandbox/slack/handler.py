"""HTTP routing: the Web API under /api/, the control API under /_sandbox/, the page at /."""

from __future__ import annotations

import json
import mimetypes
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.slack import workspace as ws
from sandbox.slack.control import BadRequest, Control
from sandbox.slack.state import Store
from sandbox.slack.webapi import WebApi

STATIC = Path(__file__).parent / "static"
MAX_BODY = 2_000_000
MAX_WAIT = 25.0  # seconds a long poll may hang; below common proxy idle timeouts


class SandboxServer(ThreadingHTTPServer):
    """The HTTP server, holding the parts every request needs."""

    daemon_threads = True  # a hanging long poll must not keep the process alive
    request_queue_size = 256  # Slack sends many requests at once; the default backlog of 5 would reset them

    def __init__(self, address: tuple[str, int], store: Store, api: WebApi, control: Control) -> None:
        super().__init__(address, Handler)
        self.store = store
        self.api = api
        self.control = control
        self.hub = control.hub

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that leaves mid long poll is normal; anything else still gets reported."""
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def single_values(pairs: dict[str, list[str]]) -> dict[str, Any]:
    """Form fields as plain values (the last one wins, as in Slack)."""
    return {k: v[-1] for k, v in pairs.items()}


class Handler(BaseHTTPRequestHandler):
    """One request."""

    server: SandboxServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a response is two writes (headers, body): no delayed-ACK stall between them

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests and the demo print what matters themselves."""

    def do_GET(self) -> None:
        """Pages, static files, Web API calls by query string, and control reads."""
        url = urlsplit(self.path)
        query = single_values(parse_qs(url.query, keep_blank_values=True))
        if url.path == "/link":
            # Socket Mode: this GET becomes the app's websocket for as long as it stays open.
            self.close_connection = True
            self.server.hub.serve(self.headers, self.rfile, self.wfile, str(query.get("ticket", "")))
        elif url.path.startswith("/api/"):
            self._web_api(url.path[5:], query)
        elif url.path.startswith("/_sandbox/"):
            self._control_get(url.path[10:], query)
        elif url.path == "/" or url.path.startswith("/archives/"):
            self._file(STATIC / "index.html")  # permalinks open the page, which then finds the message
        elif url.path.startswith("/static/"):
            self._static(url.path[8:])
        elif url.path == "/healthz":
            self._json(200, {"ok": True})
        else:
            self._json(404, {"ok": False, "error": "not_found"})

    def do_POST(self) -> None:
        """Web API calls and control actions."""
        url = urlsplit(self.path)
        raw = self._body()
        if raw is None:
            return
        if url.path.startswith("/api/"):
            params = single_values(parse_qs(url.query, keep_blank_values=True))
            try:
                params.update(self._api_params(raw))
            except ValueError:
                self._json(200, {"ok": False, "error": "invalid_json"})
                return
            self._web_api(url.path[5:], params)
        elif url.path.startswith("/_sandbox/response/"):
            self._json(*self.server.control.responses.post(url.path.rsplit("/", 1)[-1], raw))
        elif url.path.startswith("/_sandbox/panel/"):
            try:
                self._json(*self.server.control.panel(url.path.rsplit("/", 1)[-1]))
            except BadRequest as exc:
                self._json(exc.status, {"ok": False, "error": exc.error})
        elif url.path.startswith("/_sandbox/"):
            self._control_post(url.path[10:], raw)
        else:
            self._json(404, {"ok": False, "error": "not_found"})

    def _body(self) -> bytes | None:
        """The raw request body, or None after answering 413."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._json(413, {"ok": False, "error": "request_too_large"})
            return None
        return self.rfile.read(length) if length else b""

    def _api_params(self, raw: bytes) -> dict[str, Any]:
        """Web API arguments from a JSON or form-encoded body."""
        content_type = self.headers.get("Content-Type", "")
        if "json" in content_type:
            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise ValueError("a JSON body must be an object")
            return data
        return single_values(parse_qs(raw.decode(), keep_blank_values=True))

    def _web_api(self, method: str, params: dict[str, Any]) -> None:
        """Run a Web API method."""
        auth = self.headers.get("Authorization", "")
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        status, body, headers = self.server.api.call(method, params, bearer)
        self._json(status, body, headers)

    def _control_get(self, name: str, query: dict[str, Any]) -> None:
        """Reads: calls, state, messages, config."""
        store, control = self.server.store, self.server.control
        if name == "calls":
            self._json(200, {"ok": True, "calls": store.calls_for(query.get("method"))})
        elif name == "state":
            if "since" in query:
                wait = min(float(query.get("wait") or 0), MAX_WAIT)
                store.wait_for_change(int(query["since"]), wait)
            self._json(200, {"ok": True, **store.snapshot()})
        elif name == "messages":
            channel = ws.find_channel(str(query.get("channel", "")))
            snap = store.snapshot(channel.id if channel else "-")
            self._json(200, {"ok": True, "messages": snap["channels"].get(channel.id, []) if channel else []})
        elif name == "config":
            self._json(
                200,
                {
                    "ok": True,
                    "panel": control.config.panel,
                    "hint": control.config.hint,
                    "workspace": ws.workspace_json(),
                    "bot_url": control.config.bot_url,
                },
            )
        else:
            self._json(404, {"ok": False, "error": "not_found"})

    def _control_post(self, name: str, raw: bytes) -> None:
        """Actions: reset, command, click, submit_view, close_view, app_home_opened, post, settings."""
        control = self.server.control
        actions = {
            "command": control.command,
            "click": control.click,
            "submit_view": control.submit_view,
            "close_view": control.close_view,
            "app_home_opened": control.app_home_opened,
            "post": control.post,
            "settings": control.settings,
        }
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise BadRequest("invalid_json")
            if name == "reset":
                self.server.store.reset()
                self._json(200, {"ok": True})
            elif name in actions:
                self._json(*actions[name](body))
            else:
                self._json(404, {"ok": False, "error": "not_found"})
        except ValueError:
            self._json(400, {"ok": False, "error": "invalid_json"})
        except BadRequest as exc:
            self._json(exc.status, {"ok": False, "error": exc.error})

    def _static(self, name: str) -> None:
        """A file from static/, by plain name only (no directories, so no escaping it)."""
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            self._json(404, {"ok": False, "error": "not_found"})
        else:
            self._file(path)

    def _file(self, path: Path) -> None:
        """Serve a file uncached, so an edited page shows on reload."""
        data = path.read_bytes()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        self._send(200, data, f"{kind}; charset=utf-8", {"Cache-Control": "no-store"})

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        """Answer with JSON (or, for an injected 5xx, the HTML page Slack's edge would send)."""
        if "_html" in body:
            self._send(status, str(body["_html"]).encode(), "text/html; charset=utf-8", headers or {})
            return
        if "_text" in body:  # hooks.slack.com words some answers as a bare code
            self._send(status, str(body["_text"]).encode(), "text/plain; charset=utf-8", headers or {})
            return
        data = json.dumps(body).encode()
        self._send(status, data, "application/json; charset=utf-8", headers or {})

    def _send(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        """Write a complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
