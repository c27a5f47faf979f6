"""Serving Slack over Socket Mode (a websocket opened with the app-level `xapp-` token)."""

from __future__ import annotations

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.logs import get_logger

log = get_logger(__name__)


def serve_socket_mode(app: App, app_token: str) -> None:
    """Connect and serve until the process is stopped."""
    log.info("connecting to Slack over Socket Mode")
    handler = SocketModeHandler(app, app_token)
    handler.start()  # type: ignore[no-untyped-call]  # slack_bolt leaves SocketModeHandler.start unannotated
