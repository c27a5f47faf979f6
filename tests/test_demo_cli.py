"""`deploybot demo` starts everything on loopback, prints the page URL, and Ctrl-C stops all of it."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

URL = re.compile(r"http://127\.0\.0\.1:\d+")


def _port_closed(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as sock:
        return sock.connect_ex((host, int(port))) != 0


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_demo_serves_the_page_and_stops_cleanly(tmp_path: Path, stop_signal: signal.Signals) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "DEPLOYBOT_"))}
    demo = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "demo", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert demo.stdout is not None
        lines = [demo.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("DeployBot demo is up: open http://127.0.0.1:"), lines
        page, ecs, bot = URL.findall("".join(lines))
        with urllib.request.urlopen(page, timeout=10) as response:
            assert response.status == 200 and b"data-testid" in response.read()
        with urllib.request.urlopen(f"{bot}/readyz", timeout=10) as response:
            assert response.status == 200
        demo.send_signal(stop_signal)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, err
    assert "demo stopped" in out
    assert all(_port_closed(u) for u in (page, ecs, bot))
    assert (tmp_path / "demo-data" / "deploybot.sqlite").exists()
