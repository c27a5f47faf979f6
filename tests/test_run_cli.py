"""`deploybot run` as a process, configured the way deploy/task-definition.json configures it: JSON lines on stderr,
/healthz and /metrics served, the stand-ins' secrets never printed, and SIGTERM ends it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET

ROOT = Path(__file__).resolve().parents[1]
AWS_SECRET = "run-test-secret-access-key"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode()


@pytest.fixture
def stand_ins() -> Iterator[tuple[str, str]]:
    from sandbox.ecs.server import start as start_ecs
    from sandbox.slack.server import start as start_slack

    with start_ecs(port=0) as ecs:
        slack = start_slack(port=0)
        try:
            yield slack.api_url, ecs.url
        finally:
            slack.stop()


def notify_runs(metrics: str) -> float:
    """How many times the notify job has run, from /metrics (it runs several times a second: not an exact count)."""
    found = re.search(r'deploybot_job_seconds_count\{job="notify"\} ([0-9.]+)', metrics)
    return float(found.group(1)) if found else 0.0


def test_run_logs_json_serves_metrics_and_stops_on_sigterm(tmp_path: Path, stand_ins: tuple[str, str]) -> None:
    slack_api, ecs_url = stand_ins
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DEPLOYBOT_", "DATABASE_URL", "AWS_"))}
    env.update(
        {
            "PORT": str(port),
            "DEPLOYBOT_CATALOG": str(ROOT / "services.example.yml"),
            "DEPLOYBOT_LOG_FORMAT": "json",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.sqlite'}",
            "SLACK_BOT_TOKEN": DEFAULT_BOT_TOKEN,
            "SLACK_SIGNING_SECRET": DEFAULT_SIGNING_SECRET,
            "SLACK_API_URL": slack_api,
            "AWS_ENDPOINT_URL_ECS": ecs_url,
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "run-test",
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }
    )
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert get(f"http://127.0.0.1:{port}/healthz")[0] == 200
                break
            except OSError:
                assert bot.poll() is None, bot.communicate()
                assert time.monotonic() < deadline, "deploybot run never served /healthz"
                time.sleep(0.2)
        # Let the notify job run a few times, so its per-run lines would show if they were not DEBUG.
        while True:
            status, metrics = get(f"http://127.0.0.1:{port}/metrics")
            if notify_runs(metrics) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        bot.send_signal(signal.SIGTERM)
        out, err = bot.communicate(timeout=30)
    finally:
        if bot.poll() is None:
            bot.kill()
    assert bot.returncode in (0, -signal.SIGTERM, 128 + signal.SIGTERM), err
    assert status == 200 and notify_runs(metrics) >= 3
    for family in ("deploybot_deployments_active", "deploybot_outbox_depth", "deploybot_slack_api_calls_total"):
        assert f"\n{family}{{" in metrics or f"\n{family} " in metrics, family
    assert out == ""
    lines = [json.loads(line) for line in err.splitlines()]
    assert all({"timestamp", "level", "logger", "message"} <= set(line) for line in lines)
    assert any(line["message"] == "serving Slack over HTTP" and line["port"] == port for line in lines)
    assert not any(line["logger"].startswith("apscheduler.executors") for line in lines)  # per-run chatter: DEBUG
    for secret in (DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, AWS_SECRET):
        assert secret not in err
