"""Socket Mode, as Slack runs it: a websocket (RFC 6455, stdlib only) the app opens with its `xapp-` token.

`apps.connections.open` hands out `ws://…/link?ticket=…`; the stand-in's HTTP server upgrades that GET, says
`hello`, and from then on delivers commands, clicks and events as envelopes on the socket instead of signed HTTP
POSTs, waiting (Slack's 3 s) for the app's `{"envelope_id": …}` ack. Pings are answered with the same payload.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import struct
import threading
import time
from io import BufferedIOBase
from typing import Any

from sandbox.slack.delivery import Delivery

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, CLOSE, PING, PONG = 0x1, 0x8, 0x9, 0xA


def accept_key(key: str) -> str:
    """Sec-WebSocket-Accept for a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324 - RFC 6455


def frame(opcode: int, payload: bytes) -> bytes:
    """One unmasked, final server frame."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        return head + bytes([size]) + payload
    if size < 1 << 16:
        return head + bytes([126]) + struct.pack("!H", size) + payload
    return head + bytes([127]) + struct.pack("!Q", size) + payload


def read_frame(stream: BufferedIOBase) -> tuple[int, bytes] | None:
    """(opcode, unmasked payload) of the next client frame; None when the connection ends."""
    head = stream.read(2)
    if len(head) < 2:
        return None
    opcode, size, masked = head[0] & 0x0F, head[1] & 0x7F, head[1] & 0x80
    if size == 126:
        size = struct.unpack("!H", stream.read(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", stream.read(8))[0]
    mask = stream.read(4) if masked else b"\0\0\0\0"
    data = stream.read(size)
    return opcode, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class Connection:
    """One connected app."""

    def __init__(self, rfile: BufferedIOBase, wfile: BufferedIOBase) -> None:
        self.rfile, self.wfile = rfile, wfile
        self.lock = threading.Lock()
        self.acks: dict[str, dict[str, Any]] = {}
        self.acked = threading.Condition()
        self.open = True

    def send(self, opcode: int, payload: bytes) -> None:
        with self.lock:
            self.wfile.write(frame(opcode, payload))
            self.wfile.flush()

    def send_json(self, data: dict[str, Any]) -> None:
        self.send(TEXT, json.dumps(data).encode())


class SocketHub:
    """Tickets, connections and envelope delivery for the stand-in."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tickets: set[str] = set()
        self.connections: list[Connection] = []
        self.opened = 0  # apps.connections.open calls that succeeded

    def ticket(self) -> str:
        """A one-time ticket for the URL apps.connections.open returns."""
        value = secrets.token_urlsafe(12)
        with self.lock:
            self.tickets.add(value)
            self.opened += 1
        return value

    @property
    def connected(self) -> bool:
        """True while an app holds an open socket."""
        with self.lock:
            return any(c.open for c in self.connections)

    def serve(self, headers: Any, rfile: BufferedIOBase, wfile: BufferedIOBase, ticket: str) -> None:
        """Upgrade this HTTP request and run the socket until the app closes it."""
        with self.lock:
            valid = ticket in self.tickets
            self.tickets.discard(ticket)
        key = headers.get("Sec-WebSocket-Key")
        if not valid or not key or headers.get("Upgrade", "").lower() != "websocket":
            wfile.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        wfile.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n".encode()
        )
        wfile.flush()
        conn = Connection(rfile, wfile)
        with self.lock:
            self.connections.append(conn)
        conn.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0DEPLOYBOT"}})
        try:
            self._loop(conn)
        finally:
            conn.open = False
            with self.lock:
                self.connections.remove(conn)

    def _loop(self, conn: Connection) -> None:
        while True:
            try:
                got = read_frame(conn.rfile)
            except (OSError, struct.error):
                return
            if got is None:
                return
            opcode, data = got
            if opcode == PING:
                conn.send(PONG, data)
            elif opcode == CLOSE:
                conn.send(CLOSE, data[:2])
                return
            elif opcode == TEXT:
                message = json.loads(data or b"{}")
                if isinstance(message, dict) and message.get("envelope_id"):
                    with conn.acked:
                        conn.acks[str(message["envelope_id"])] = message
                        conn.acked.notify_all()

    def deliver(self, kind: str, payload: dict[str, Any], timeout: float) -> Delivery:
        """Send an envelope to a connected app and wait for its ack, as Slack does."""
        with self.lock:
            conn = next((c for c in self.connections if c.open), None)
        if conn is None:
            return Delivery(None, "", "", "dispatch_failed")
        envelope_id = secrets.token_hex(8)
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "payload": payload}
        envelope["accepts_response_payload"] = kind != "events_api"
        if kind == "events_api":
            envelope.update(retry_attempt=0, retry_reason="")  # what Slack sends on a first delivery
        try:
            conn.send_json(envelope)
        except OSError:
            return Delivery(None, "", "", "dispatch_failed")
        deadline = time.monotonic() + timeout
        with conn.acked:
            while envelope_id not in conn.acks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return Delivery(None, "", "", "operation_timeout")
                conn.acked.wait(left)
            ack = conn.acks.pop(envelope_id)
        body = json.dumps(ack["payload"]) if ack.get("payload") else ""
        return Delivery(200, body, "application/json")

    def close(self) -> None:
        """Tell every app the socket is closing (Slack's servers do this when they rotate)."""
        with self.lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.send(CLOSE, struct.pack("!H", 1001))
