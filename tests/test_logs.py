"""bot.logs: one JSON object per line (or readable lines on a terminal), context fields, no secrets, quiet jobs."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from bot.config import load_settings
from bot.domain.enums import LogFormat
from bot.logs import MASK, bound, configure_logging, get_logger, redactor

log = get_logger("bot.tests.logs")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_the_bound_context_and_the_call_fields() -> None:
    out = io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=out)
    with bound(deployment_id=7, service="catalog", ecs_arn=None, user="U0ALICE"):
        log.info("stage entered %s", "BAKE_TIME", stage="BAKE_TIME", name="clashes with LogRecord.name")
        logging.getLogger("uvicorn.error").warning("a library's line at 100%")
    log.info("outside")
    first, foreign, outside = json_lines(out)
    assert list(first)[:4] == ["timestamp", "level", "logger", "message"]
    assert first["message"] == "stage entered BAKE_TIME" and first["level"] == "info"
    assert (first["deployment_id"], first["service"], first["user"], first["stage"]) == (
        7,
        "catalog",
        "U0ALICE",
        "BAKE_TIME",
    )
    assert "ecs_arn" not in first  # unknown fields are left out, not null
    assert first["name_"] == "clashes with LogRecord.name" and first["logger"] == "bot.tests.logs"
    assert (foreign["logger"], foreign["message"], foreign["deployment_id"]) == (
        "uvicorn.error",
        "a library's line at 100%",
        7,
    )
    assert "deployment_id" not in outside


@pytest.mark.usefixtures("restore_logging")
def test_exceptions_are_a_text_field_without_local_variables() -> None:
    out = io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=out)
    token = "xoxb-1234-5678-abcdef"
    try:
        raise RuntimeError(f"boom with {token}")
    except RuntimeError:
        log.exception("listener failed", request_id="ab12cd34")
    (line,) = json_lines(out)
    assert line["request_id"] == "ab12cd34" and line["level"] == "error"
    assert "RuntimeError: boom with [redacted]" in line["exception"]
    assert token not in out.getvalue()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("token xoxb-12-34-abcDEF here", f"token {MASK} here"),
        ("user token xoxp-1-2-3", f"user token {MASK}"),
        ("app token xapp-1-A0-123-abc", f"app token {MASK}"),
        ("postgresql+psycopg://deploybot:hunter22@db:5432/bot", f"postgresql+psycopg://deploybot:{MASK}@db:5432/bot"),
        ("signed with s3cr3t-signing-value!", f"signed with {MASK}!"),
        (
            "sqlite:///deploybot.sqlite and https://slack.com/api/",
            "sqlite:///deploybot.sqlite and https://slack.com/api/",
        ),
        ("the tests' AWS key is test", "the tests' AWS key is test"),  # placeholders shorter than 8 stay
    ],
)
def test_redactor_masks_tokens_url_passwords_and_known_secrets(text: str, expected: str) -> None:
    redact = redactor(["s3cr3t-signing-value", "test"])
    event = redact(None, "info", {"event": text, "nested": {"values": [text]}})
    assert event == {"event": expected, "nested": {"values": [expected]}}


@pytest.mark.usefixtures("restore_logging")
def test_scheduler_chatter_is_debug_and_chatty_libraries_never_go_below_info() -> None:
    runs = logging.getLogger("apscheduler.executors.default")
    quiet = io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=quiet)
    runs.info('Running job "notify" (scheduled at …)')
    runs.error("Job raised an exception")
    assert [(line["level"], line["message"]) for line in json_lines(quiet)] == [("error", "Job raised an exception")]

    loud = io.StringIO()
    configure_logging("DEBUG", LogFormat.JSON, stream=loud)
    runs.info('Running job "notify" (scheduled at …)')
    logging.getLogger("botocore.endpoint").debug("Making request with params {'body': b'...'}")
    logging.getLogger("slack_bolt.App").debug("raw body: token=...")
    log.debug("our own debug line")
    assert [(line["level"], line["logger"]) for line in json_lines(loud)] == [
        ("debug", "apscheduler.executors.default"),
        ("debug", "bot.tests.logs"),
    ]


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize(
    ("fmt", "stream", "is_json"),
    [
        (LogFormat.AUTO, io.StringIO(), True),
        (LogFormat.AUTO, Terminal(), False),
        (LogFormat.JSON, Terminal(), True),
        (LogFormat.CONSOLE, io.StringIO(), False),
    ],
)
def test_auto_is_json_unless_a_terminal_reads_it(fmt: LogFormat, stream: io.StringIO, is_json: bool) -> None:
    configure_logging("INFO", fmt, stream=stream)
    with bound(deployment_id=3):
        log.info("hello")
    line = stream.getvalue().strip()
    assert line.startswith("{") is is_json
    assert "deployment_id" in line and "hello" in line


@pytest.mark.usefixtures("restore_logging")
def test_configuring_again_replaces_only_our_handler() -> None:
    root = logging.getLogger()
    others = [h for h in root.handlers if h.get_name() != "deploybot"]
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=first)
    configure_logging("INFO", LogFormat.JSON, stream=second)
    log.info("once")
    assert first.getvalue() == "" and len(json_lines(second)) == 1
    assert [h for h in root.handlers if h.get_name() != "deploybot"] == others


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"DEPLOYBOT_LOG_LEVEL": "chatty"}, "DEPLOYBOT_LOG_LEVEL"),
        ({"DEPLOYBOT_LOG_FORMAT": "xml"}, "DEPLOYBOT_LOG_FORMAT"),
    ],
)
def test_bad_log_settings_are_named(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], problem: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings, problems = load_settings()
    assert settings is None and [p.message.split(":")[0] for p in problems] == [problem]


def test_log_settings_and_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOYBOT_LOG_LEVEL", "debug")
    monkeypatch.setenv("DEPLOYBOT_LOG_FORMAT", "console")
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-from-the-environment")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-secret-from-env")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://bot:db-password-1@db/bot")
    settings, problems = load_settings()
    assert settings is not None and problems == []
    assert (settings.log_level, settings.log_format) == ("DEBUG", LogFormat.CONSOLE)
    assert sorted(settings.secret_values()) == ["db-password-1", "signing-secret-from-env", "xoxb-from-the-environment"]
