"""Slack Web API calls over kept-alive connections, one per thread and host, instead of a new one per call.

slack_sdk's WebClient opens every call through `urllib.request.urlopen`: a new TCP connection and, on the real
Slack, a new TLS handshake with a new default SSL context, which loads the system's CA bundle again (~60 ms of CPU
a call measured here, against ~1.5 ms kept alive: bench/README.md). The outbox sender makes a call per message.
Here a call reuses the connection of the call before on the same thread when the server kept it open and it has
not sat idle for long, and every connection of a client shares one SSL context.

What does not change: the request (urllib's `Request`, as slack_sdk built it), the answer handed back (status,
headers, decoded body) and its errors: a status other than 2xx raises `HTTPError` as urllib does, which slack_sdk
turns into its own response (a 429 keeps its Retry-After). A connection the server closed while idle is noticed
before the request is written (the socket reads end-of-file) and replaced. A call that fails on a reused
connection is not sent again: it fails as a transport error, as it would on a new connection, and the sender
treats a post so failed as perhaps posted (it looks before posting again).
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import time
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request

from slack_sdk import WebClient

_DEFAULT_LOCK = threading.Lock()
IDLE_SECONDS = 20.0  # a connection unused for longer is closed rather than reused (servers drop idle ones)


class _Connections(threading.local):
    """This thread's open connections, by (scheme, host:port), with when each was last used."""

    def __init__(self) -> None:
        self.open: dict[tuple[str, str], tuple[http.client.HTTPConnection, float]] = {}


class KeepAliveClient(WebClient):
    """A WebClient whose calls keep their connection open for the next call from the same thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections = _Connections()
        self._default_tls: ssl.SSLContext | None = None

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        parts = urlsplit(url)
        if self.proxy is not None or parts.scheme not in ("http", "https"):
            return dict(super()._perform_urllib_http_request_internal(url, req))  # slack_sdk's own way
        key = (parts.scheme, parts.netloc)
        conn = self._connection(key)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        try:
            try:
                conn.request("POST", path or "/", body=req.data, headers=dict(req.header_items()))
            except OSError as exc:  # as urllib raises it: connecting or sending failed
                raise URLError(exc) from exc
            resp = conn.getresponse()
            body = resp.read()
        except BaseException:
            self._drop(key)
            raise
        if resp.will_close:
            self._drop(key)
        else:
            self._connections.open[key] = (conn, time.monotonic())
        if not 200 <= resp.status < 300:
            raise HTTPError(url, resp.status, resp.reason, resp.headers, io.BytesIO(body))
        if resp.headers.get_content_type() == "application/gzip":
            return {"status": resp.status, "headers": resp.headers, "body": body}
        charset = resp.headers.get_content_charset() or "utf-8"
        return {"status": resp.status, "headers": resp.headers, "body": body.decode(charset)}

    def _connection(self, key: tuple[str, str]) -> http.client.HTTPConnection:
        """This thread's open connection to `key` if it is still good, else a new one (connected on first use)."""
        found = self._connections.open.pop(key, None)
        if found is not None:
            conn, used = found
            if time.monotonic() - used <= IDLE_SECONDS and not _dropped(conn):
                return conn
            conn.close()
        scheme, netloc = key
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=self.timeout, context=self._tls())
        return http.client.HTTPConnection(netloc, timeout=self.timeout)

    def _tls(self) -> ssl.SSLContext:
        """The client's SSL context, else one default context (verifying as urllib's does) made once, not per call.

        urllib makes a default context for every connection, loading the system's CA bundle each time: ~20-60 ms of
        CPU per Slack call, more than everything else the sender does for a message.
        """
        if self.ssl is not None:
            return self.ssl
        with _DEFAULT_LOCK:
            if self._default_tls is None:
                self._default_tls = ssl.create_default_context()
            return self._default_tls

    def _drop(self, key: tuple[str, str]) -> None:
        found = self._connections.open.pop(key, None)
        if found is not None:
            found[0].close()


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """True when the server has closed the connection (or sent something unasked): it must not be reused."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)  # an idle HTTP connection has nothing to read unless it was closed
