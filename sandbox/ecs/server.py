"""HTTP front end: the ECS JSON 1.1 API on `POST /` and the control API under `/_sandbox/`."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import control
from .app import Sandbox
from .errors import EcsError
from .protocol import CONTENT_TYPE, encode_error, operation_from_target


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Many concurrent pollers: a deeper accept queue than the default of 5.
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        super().__init__(address, _Handler)
        self.sandbox = sandbox


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK adds ~40 ms per call.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the sandbox quiet; the call log is available at GET /_sandbox/calls."""

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "00000000-0000-4000-8000-000000000000")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        """ECS API calls and control POSTs."""
        raw = self._body()
        if self.path.startswith(control.PREFIX):
            self._control("POST", raw)
            return
        try:
            operation = operation_from_target(self.headers.get("X-Amz-Target"))
        except EcsError as error:
            self._send(error.http_status, encode_error(error), CONTENT_TYPE)
            return
        status, body = self.server.sandbox.call(operation, raw, caller_of(self.headers.get("Authorization")))
        if status == 0:  # an injected Timeout: the client never gets an answer
            self.close_connection = True
            return
        self._send(status, body, CONTENT_TYPE)

    def do_GET(self) -> None:
        """Control GETs."""
        self._control("GET", b"")

    def _control(self, method: str, raw: bytes) -> None:
        parts = urlsplit(self.path)
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise control.ControlError("body must be a JSON object")
            answer = control.handle(self.server.sandbox, method, parts.path, dict(parse_qsl(parts.query)), body)
            status = 200
        except ValueError:
            answer, status = {"error": "body is not valid JSON"}, 400
        except control.ControlError as exc:
            answer, status = {"error": str(exc)}, exc.status
        self._send(status, json.dumps(answer).encode(), "application/json")


def caller_of(authorization: str | None) -> str | None:
    """The access key id a SigV4 `Authorization` header names (`Credential=AKID/date/region/ecs/aws4_request`)."""
    _, _, credential = (authorization or "").partition("Credential=")
    return credential.split("/", 1)[0].strip() or None


class SandboxHandle:
    """A running sandbox: `.url`, `.port`, `.stop()`; also a context manager."""

    def __init__(self, server: _Server, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.sandbox = server.sandbox
        host, port = server.server_address[:2]
        self.host = str(host)
        self.port = int(port)
        self.url = f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Shut the server down and wait for its thread."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self.sandbox.close()

    def __enter__(self) -> SandboxHandle:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def start(
    port: int = 0, speed: float = 1.0, host: str = "127.0.0.1", switches: Mapping[str, str] | None = None
) -> SandboxHandle:
    """Start the sandbox on a background daemon thread (port 0 picks a free port)."""
    server = _Server((host, port), Sandbox(speed, switches))
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), name="ecs-sandbox-http", daemon=True)
    thread.start()
    return SandboxHandle(server, thread)


def serve_forever(host: str, port: int, speed: float, switches: Mapping[str, str] | None = None) -> None:
    """Run the sandbox in the foreground (for `deploybot sandbox ecs`)."""
    server = _Server((host, port), Sandbox(speed, switches))
    bound_host, bound_port = server.server_address[:2]
    chosen = " ".join(f"{k}={v}" for k, v in sorted(server.sandbox.switches.as_dict().items()))
    print(f"ECS sandbox on http://{bound_host!s}:{bound_port} (speed {speed:g})", flush=True)
    print(f"switches: {chosen}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.sandbox.close()
