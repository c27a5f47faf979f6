"""Start and stop the Slack stand-in."""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from sandbox.slack.control import Config, Control
from sandbox.slack.handler import SandboxServer
from sandbox.slack.socket import SocketHub
from sandbox.slack.state import Store
from sandbox.slack.webapi import WebApi

DEFAULT_SIGNING_SECRET = "sandbox-signing-secret"  # noqa: S105 - a loopback-only test value
DEFAULT_BOT_TOKEN = "xoxb-sandbox-token"  # noqa: S105 - a loopback-only test value
DEFAULT_APP_TOKEN = "xapp-1-A0DEPLOYBOT-1-sandbox"  # noqa: S105 - Socket Mode's app-level token, loopback only


def _build(
    host: str,
    port: int,
    *,
    bot_url: str | None,
    signing_secret: str,
    bot_token: str,
    panel: list[dict[str, Any]] | None,
) -> SandboxServer:
    """Wire store, Web API, control API and HTTP server together."""
    config = Config(bot_url=bot_url, signing_secret=signing_secret, panel=list(panel or []))
    store = Store()
    hub = SocketHub()
    api = WebApi(store, bot_token, lambda: config.base_url, hub=hub)
    server = SandboxServer((host, port), store, api, Control(store, api, config, hub))
    config.base_url = f"http://{host}:{server.server_address[1]}"
    return server


class SlackSandboxHandle:
    """A running stand-in: its URLs, its state, and how to stop it."""

    def __init__(self, server: SandboxServer) -> None:
        self._server = server
        # A short poll interval makes stop() quick, which keeps test suites that start many stand-ins fast.
        self._thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="slack-sandbox", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Its base URL, e.g. http://127.0.0.1:8765 (no trailing slash)."""
        return self._server.control.config.base_url

    @property
    def api_url(self) -> str:
        """What `WebClient(base_url=...)` needs."""
        return self.url + "/api/"

    @property
    def store(self) -> Store:
        """Its state, for in-process tests."""
        return self._server.store

    @property
    def bot_url(self) -> str | None:
        """Where signed requests go now."""
        return self._server.control.config.bot_url

    def set_bot_url(self, url: str | None) -> None:
        """Where signed requests go (the bot's `/slack/events`)."""
        self._server.control.config.bot_url = url

    def set_panel(self, panel: list[dict[str, Any]]) -> None:
        """The page's sandbox panel: buttons that POST a body to a URL (known only once the other parts run)."""
        self._server.control.config.panel = list(panel)

    def set_hint(self, command: str) -> None:
        """The command the page suggests (in an empty channel, above the composer)."""
        self._server.control.config.hint = command

    @property
    def hub(self) -> SocketHub:
        """Socket Mode connections (apps that opened a websocket with the app-level token)."""
        return self._server.hub

    def stop(self) -> None:
        """Stop serving and release the port and any long polls."""
        self._server.hub.close()
        self._server.store.close()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackSandboxHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start(
    port: int = 0,
    *,
    bot_url: str | None = None,
    signing_secret: str = DEFAULT_SIGNING_SECRET,
    bot_token: str = DEFAULT_BOT_TOKEN,
    panel: list[dict[str, Any]] | None = None,
    host: str = "127.0.0.1",
) -> SlackSandboxHandle:
    """Start the stand-in on a background thread (port 0 picks a free one)."""
    return SlackSandboxHandle(
        _build(host, port, bot_url=bot_url, signing_secret=signing_secret, bot_token=bot_token, panel=panel)
    )


def serve_forever(host: str, port: int, bot_url: str | None, signing_secret: str, bot_token: str) -> None:
    """Run the stand-in in the foreground until interrupted (the CLI's entry point)."""
    server = _build(host, port, bot_url=bot_url, signing_secret=signing_secret, bot_token=bot_token, panel=None)
    print(f"Slack stand-in on {server.control.config.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.store.close()
        server.server_close()
