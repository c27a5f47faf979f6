"""`deploybot demo` starts everything on loopback, prints the page URL, and Ctrl-C stops all of it."""

from __future__ import annotations

import json
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
        # One pace for ECS's clock and the bot's: the demo is short because its bakes are, not its clock.
        with urllib.request.urlopen(f"{ecs}/_sandbox/state", timeout=10) as response:
            assert json.load(response)["speed"] == 1.0
        assert "(real time)" in lines[2]
        demo.send_signal(stop_signal)
        out, err = demo.communicate(timeout=30)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0, err
    assert "demo stopped" in out
    assert all(_port_closed(u) for u in (page, ecs, bot))
    assert (tmp_path / "demo-data" / "deploybot.sqlite").exists()


def test_a_taken_port_is_one_line_naming_the_flag_to_pick_another(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DATABASE_URL", "DEPLOYBOT_"))}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot listen on port {port}" in lines[0] and "`make demo PORT=8080`" in lines[0], lines[0]
    assert "--port 8080" in lines[0] and "demo is up" not in done.stdout


def test_make_demo_passes_its_port_to_deploybot_demo() -> None:
    root = Path(__file__).resolve().parents[1]
    plan = subprocess.run(
        ["make", "-n", "demo", "PORT=8123", "STAMP=Makefile"], cwd=root, capture_output=True, text=True, check=True
    )
    assert "deploybot demo --port 8123" in plan.stdout, plan.stdout


def test_the_demo_catalog_bakes_for_a_minute_at_most() -> None:
    from bot.demo import DEMO_BAKE, demo_catalog

    catalog = demo_catalog()
    assert catalog.names() == ["ui", "catalog", "orders", "notifications"]
    for svc in catalog:
        assert max(svc.bake, svc.canary_bake, svc.step_bake) <= DEMO_BAKE, svc.key
    canary = catalog.get("catalog")
    assert canary is not None and canary.canary_bake == DEMO_BAKE


def test_the_demo_database_starts_empty_like_the_sandboxes(tmp_path: Path) -> None:
    from bot.demo import fresh_database

    database = tmp_path / "deploybot.sqlite"
    for path in (database, tmp_path / "deploybot.sqlite-journal"):
        path.write_text("left from a previous run")
    fresh_database(database)
    assert not database.exists() and not (tmp_path / "deploybot.sqlite-journal").exists()
