"""The page: served at /, self-contained (nothing from the internet), with the hooks a browser test needs."""

from __future__ import annotations

import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sandbox.slack import server
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import http

STATIC = Path(server.__file__).parent / "static"
URL = re.compile(r"(?:https?:)?//[^\s\"'`)<>]+", re.IGNORECASE)
ALLOWED = ("http://127.0.0.1", "http://localhost")  # loopback only; the page itself uses relative URLs


def get(url: str) -> tuple[int, str, str]:
    """GET a URL: status, content type, text."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()


def test_page_and_static_files_are_served(sandbox: SlackSandboxHandle) -> None:
    status, kind, html = get(sandbox.url + "/")
    assert status == 200 and kind.startswith("text/html")
    referenced = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert {"/static/app.css", "/static/app.js", "/static/blocks.js", "/static/mrkdwn.js", "/static/modal.js"} <= set(
        referenced
    )
    for path in referenced:
        assert (STATIC / path.removeprefix("/static/")).is_file()
        assert get(sandbox.url + path)[0] == 200
    assert get(sandbox.url + "/archives/C0DEPLOYS/p1732610000000100")[2] == html  # permalinks open the page
    assert http("GET", sandbox.url + "/static/../server.py")[0] == 404


def test_static_files_reference_nothing_external() -> None:
    files = [p for p in STATIC.iterdir() if p.is_file()]
    assert files
    for path in files:
        text = path.read_text()
        external = [u for u in URL.findall(text) if not u.lower().startswith(ALLOWED)]
        assert external == [], f"{path.name} references {external}"
        assert "@import" not in text and "fonts.googleapis" not in text


def test_page_has_the_stable_test_ids() -> None:
    source = "\n".join(p.read_text() for p in STATIC.iterdir() if p.suffix in (".html", ".js"))
    for testid in (
        "composer-input",
        "user-switcher",
        "channel-link-",
        "app-home-link",
        "message",
        "thread-link",
        "button-",
        "confirm-dialog",
        "confirm-button",
        "confirm-deny",
        "modal",
        "modal-submit",
        "modal-close",
        "modal-input-",
        "modal-error-",
        "sandbox-panel",
        "panel-button-",
        "thread-pane",
        "home-view",
        "live-status",
        "workspace-name",
    ):
        assert re.search(rf'data-testid="{testid}|testid = "{testid}', source), testid


def test_config_and_panel_proxy() -> None:
    got: list[bytes] = []

    class Target(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(202)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Target)
    threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True).start()
    panel = [
        {
            "label": "Trip an alarm",
            "url": f"http://127.0.0.1:{srv.server_address[1]}/alarm",
            "body": {"service": "catalog"},
        }
    ]
    try:
        with server.start(panel=panel) as handle:
            _, config, _ = http("GET", handle.url + "/_sandbox/config")
            assert config["panel"] == panel
            assert {u["id"] for u in config["workspace"]["users"]} >= {"U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"}
            assert http("POST", handle.url + "/_sandbox/panel/0", {})[1] == {"ok": True, "status": 202, "body": "{}"}
            assert got == [b'{"service": "catalog"}']
            assert http("POST", handle.url + "/_sandbox/panel/1", {})[0] == 404
    finally:
        srv.shutdown()
        srv.server_close()


def test_state_long_poll_wakes_on_change(sandbox: SlackSandboxHandle) -> None:
    version = http("GET", sandbox.url + "/_sandbox/state")[1]["version"]
    timer = threading.Timer(
        0.2,
        lambda: http("POST", sandbox.url + "/_sandbox/post", {"user": "U0ALICE", "channel": "C0DEPLOYS", "text": "hi"}),
    )
    timer.start()
    _, state, _ = http("GET", f"{sandbox.url}/_sandbox/state?since={version}&wait=5")
    assert state["version"] > version and state["channels"]["C0DEPLOYS"][0]["text"] == "hi"
