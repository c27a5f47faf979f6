"""`deploybot check` and the refusal of `deploybot run` to start on a broken configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.db.migrate import head_revision

ROOT = Path(__file__).resolve().parents[1]
HEAD = head_revision()  # the newest migration's revision

BROKEN = """\
services:
  catalog:
    cluster: unicorn-watch
    region: us-east-1
    deployers: [alice]
    approvers: [S0APPROVERS]
    approval_stages: [PRODUCTION_TRAFFIC_SHIFT]
    canary_percent: 150
    colour: blue
"""


def _deploybot(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    # No AWS credentials unless a test passes them: `check` would otherwise try to reach real AWS.
    full_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DEPLOYBOT_", "DATABASE_URL", "AWS_"))
    }
    full_env.update({"AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_CONFIG_FILE": "/dev/null"})
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sqlite_env(tmp_path: Path) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite"}


def test_check_passes_on_the_example_catalog(sqlite_env: dict[str, str]) -> None:
    result = _deploybot("check", "--offline", "--catalog", "services.example.yml", env=sqlite_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: catalog services.example.yml: 4 services (ui, catalog, orders, notifications)" in result.stdout
    assert "database sqlite:///" in result.stdout


def test_check_says_whether_the_schema_is_current(sqlite_env: dict[str, str]) -> None:
    before = _deploybot("check", "--offline", "--catalog", "services.example.yml", env=sqlite_env)
    assert f"schema at nothing yet; `deploybot migrate` (or `deploybot run`) upgrades it to {HEAD}" in before.stdout
    assert _deploybot("migrate", env=sqlite_env).returncode == 0
    after = _deploybot("check", "--offline", "--catalog", "services.example.yml", env=sqlite_env)
    assert f"reachable, schema at {HEAD} (current)" in after.stdout, after.stdout


def test_check_lists_every_problem_with_file_and_line(tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    catalog = tmp_path / "services.yml"
    catalog.write_text(BROKEN)
    result = _deploybot("check", "--offline", env={**sqlite_env, "DEPLOYBOT_CATALOG": str(catalog)})
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == [
        f"{catalog}:5: `deployers`: `alice` is not a Slack user id (U…/W…) or user-group id (S…)",
        f"{catalog}:7: `approval_stages`: ECS does not allow an approval pause at PRODUCTION_TRAFFIC_SHIFT (it re-runs "
        "during a rollback); use POST_TEST_TRAFFIC_SHIFT or PRE_PRODUCTION_TRAFFIC_SHIFT",
        f"{catalog}:8: `canary_percent`: 150 is out of range (0.1–99.9)",
        f"{catalog}:9: unknown key `colour` in service `catalog`",
        "4 problems found",
    ]


def test_bad_settings_are_reported_by_variable_name(sqlite_env: dict[str, str]) -> None:
    env = {**sqlite_env, "PORT": "http", "DEPLOYBOT_POLL_SECONDS": "0", "DEPLOYBOT_LEASE_SECONDS": "0.5"}
    result = _deploybot("check", "--offline", "--catalog", "services.example.yml", env=env)
    assert result.returncode == 1
    assert "environment: PORT: Input should be a valid integer" in result.stdout
    assert "environment: DEPLOYBOT_POLL_SECONDS: Input should be greater than 0" in result.stdout
    assert "environment: DEPLOYBOT_LEASE_SECONDS: Input should be greater than or equal to 1" in result.stdout


def test_unreachable_database_is_one_clear_line() -> None:
    env = {"DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"}
    result = _deploybot("check", "--offline", "--catalog", "services.example.yml", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    problem = [line for line in result.stdout.splitlines() if line.startswith("DATABASE_URL")]
    assert (
        len(problem) == 1 and "cannot reach the database at postgresql+psycopg://nobody@127.0.0.1:1/none" in problem[0]
    )


def test_run_refuses_to_start_on_a_broken_catalog(tmp_path: Path, sqlite_env: dict[str, str]) -> None:
    catalog = tmp_path / "services.yml"
    catalog.write_text(BROKEN)
    env = {
        **sqlite_env,
        "DEPLOYBOT_CATALOG": str(catalog),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "test-secret",
    }
    result = _deploybot("run", env=env)
    assert result.returncode == 1
    assert "refusing to start" in result.stderr
    assert f"{catalog}:8: `canary_percent`: 150 is out of range (0.1–99.9)" in result.stderr


def test_run_refuses_to_start_without_slack_credentials(sqlite_env: dict[str, str]) -> None:
    env = {**sqlite_env, "DEPLOYBOT_CATALOG": "services.example.yml", "SLACK_BOT_TOKEN": "xoxp-user-token"}
    result = _deploybot("run", env=env)
    assert result.returncode == 1
    assert "SLACK_BOT_TOKEN must be a bot token starting with xoxb-" in result.stderr
    assert "SLACK_SIGNING_SECRET is not set" in result.stderr
    assert "xoxp-user-token" not in result.stderr


def test_migrate_creates_the_schema(sqlite_env: dict[str, str]) -> None:
    result = _deploybot("migrate", env=sqlite_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"database at revision {HEAD}")


def test_check_online_reaches_the_slack_stand_in_and_the_ecs_sandbox(sqlite_env: dict[str, str]) -> None:
    from sandbox.ecs.server import start as start_ecs
    from sandbox.slack.server import start as start_slack

    with start_ecs(port=0) as ecs, start_slack(port=0) as slack:
        env = {
            **sqlite_env,
            "SLACK_BOT_TOKEN": "xoxb-sandbox-token",
            "SLACK_API_URL": slack.api_url,
            "AWS_ENDPOINT_URL_ECS": ecs.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
        }
        result = _deploybot("check", "--catalog", "services.example.yml", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok: Slack: authenticated as" in result.stdout
    assert "ok: ECS: catalog → unicorn-watch/catalog runs catalog:2" in result.stdout


def test_check_online_reports_a_wrong_slack_token(sqlite_env: dict[str, str]) -> None:
    from sandbox.slack.server import start as start_slack

    with start_slack(port=0) as slack:
        env = {**sqlite_env, "SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_API_URL": slack.api_url}
        result = _deploybot("check", "--catalog", "services.example.yml", env=env)
    assert result.returncode == 1
    assert "SLACK_BOT_TOKEN: Slack auth.test failed: invalid_auth" in result.stdout
    assert "ECS: not checked (no AWS credentials found)" not in result.stdout  # problems only, when any


def test_check_lists_granted_scopes_against_needed_and_verifies_the_app_token(sqlite_env: dict[str, str]) -> None:
    from sandbox.slack.server import DEFAULT_APP_TOKEN
    from sandbox.slack.server import start as start_slack

    with start_slack(port=0) as slack:
        env = {
            **sqlite_env,
            "SLACK_BOT_TOKEN": "xoxb-sandbox-token",
            "SLACK_APP_TOKEN": DEFAULT_APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
        }
        good = _deploybot("check", "--catalog", "services.example.yml", env=env)
        slack.store.settings.scopes = frozenset({"commands", "chat:write"})
        missing = _deploybot("check", "--catalog", "services.example.yml", env=env)
        wrong_app = _deploybot(
            "check", "--catalog", "services.example.yml", env={**env, "SLACK_APP_TOKEN": "xapp-1-wrong"}
        )
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok: Slack: scopes needed: channels:history, channels:read, chat:write" in good.stdout
    assert "ok: Slack: the app-level token opens a Socket Mode connection" in good.stdout
    assert missing.returncode == 1
    assert "SLACK_BOT_TOKEN: the bot token lacks channels:history, channels:read, chat:write.public" in missing.stdout
    assert wrong_app.returncode == 1
    assert "SLACK_APP_TOKEN: apps.connections.open refused the app-level token: invalid_auth" in wrong_app.stdout
