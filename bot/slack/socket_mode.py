"""Serving Slack over Socket Mode (a websocket opened with the app-level `xapp-` token), stopped by SIGTERM/SIGINT."""

from __future__ import annotations

import signal
import threading
from types import FrameType

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.logs import get_logger

log = get_logger(__name__)


def serve_socket_mode(app: App, app_token: str, stop: threading.Event | None = None) -> None:
    """Connect and serve until SIGTERM or SIGINT (or `stop`), then close the socket; the caller stops the rest.

    slack_bolt's own `start()` waits forever and handles neither signal: a SIGTERM killed the process with the
    scheduler, the database and the outbox's claims left as they were.
    """
    stop = stop or threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    handler = SocketModeHandler(app, app_token)  # on the app's client: its base_url, no sleeping retry handlers
    try:
        log.info("connecting to Slack over Socket Mode")
        handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
        log.info("connected over Socket Mode")
        stop.wait()
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        for sig, old in previous.items():
            signal.signal(sig, old)
        log.info("Socket Mode connection closed")
