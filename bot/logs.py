"""Logging: structlog renders every line (ours and the libraries'), as JSON in `deploybot run` or for people.

Conventions (docs/ARCHITECTURE.md, "Logs"): modules log through `get_logger(__name__)`; what a line is about is
bound at the edges with `bound(...)` (a Slack request, a deployment in a reconcile pass, an outbox row), so every
line in that scope carries `deployment_id`, `service`, `ecs_arn`, `user`, `channel`, `request_id` where known.
Secrets never reach the output: the libraries that dump requests at DEBUG are held at INFO, and a last processor
masks Slack tokens, URL passwords and the process's known secret values in whatever is left.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.domain.enums import LogFormat

__all__ = ["LogFormat", "bind_fresh", "bound", "configure_logging", "get_logger", "redactor"]

MASK = "[redacted]"
MIN_SECRET_LENGTH = 8
# Slack bot/user/app/config tokens, and the password of a URL such as postgresql://user:password@host/db.
SECRET_PATTERNS = (
    re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"),
    re.compile(r"\bxapp-[A-Za-z0-9-]+"),
    re.compile(r"(?<=://)([^:/@\s]+):[^@/\s]+(?=@)"),
)
# Libraries that log request bodies, headers or payloads at DEBUG: never below INFO, whatever the level.
CHATTY_LIBRARIES = (
    "botocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "slack_sdk",
    "slack_bolt",
    "deploybot.bolt",
    "uvicorn",
    "asyncio",
    "websocket",
    "httpx",
    "httpcore",
)
# SQLAlchemy logs every statement and its parameters from INFO on: never below WARNING. Alembic names each of its
# plugins at INFO as it loads them: noise on every start.
QUIET_LIBRARIES = ("sqlalchemy", "alembic.runtime.plugins")
# APScheduler's executor says "Running job…" and "…executed successfully" on every run (twice a second).
SCHEDULER_CHATTER = "apscheduler.executors"
_HANDLER_NAME = "deploybot"
# Secrets that come from the environment rather than from Settings; they are masked like the settings' ones.
ENVIRONMENT_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """The logger for a module: `log.info("what happened", key=value)`; `%s` arguments work too."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def bound(**fields: object) -> Iterator[None]:
    """Add the fields that are known (not None) to every line logged in this scope, on this thread."""
    known = {k: v for k, v in fields.items() if v is not None}
    with structlog.contextvars.bound_contextvars(**known):
        yield


def context_field(name: str) -> object | None:
    """A field of this thread's log context (e.g. the request id a worker job inherited), None when unbound."""
    return structlog.contextvars.get_contextvars().get(name)


def bind_fresh(**fields: object) -> None:
    """Replace this thread's log context with the known fields (a unit of work that has no scope to exit)."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})


def redactor(secrets: Iterable[str] = ()) -> Processor:
    """A processor masking Slack tokens, URL passwords and the given secret values anywhere in a line."""
    # Shorter values are placeholders (the tests' and the demo's made-up AWS keys), and masking them would mangle
    # ordinary words; real secrets (Slack's, AWS's, database passwords worth the name) are longer.
    known = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def scrub(value: Any) -> Any:
        if isinstance(value, str):
            for secret in known:
                value = value.replace(secret, MASK)
            for pattern in SECRET_PATTERNS:
                value = pattern.sub(lambda m: f"{m.group(1)}:{MASK}" if m.lastindex else MASK, value)
            return value
        if isinstance(value, Mapping):
            return {k: scrub(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [scrub(v) for v in value]
        return value

    def redact(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
        return {k: scrub(v) for k, v in event.items()}

    return redact


# Our structlog loggers hand their lines to the standard library as records (fields as `extra`), so one handler
# renders ours and the libraries' alike, and a process that never calls configure_logging (tests, the benchmark)
# still logs the standard way. The fields bound with `bound` are merged when the handler formats the record, on the
# thread that logged it.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def _unclash(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """A field named like a LogRecord attribute (`name`, `module`…) would make logging raise: suffix it."""
    keep = {"event", "exc_info", "stack_info", "stacklevel"}
    return {(f"{k}_" if k in _RECORD_ATTRIBUTES and k not in keep else k): v for k, v in event.items()}


structlog.configure(
    processors=[
        structlog.stdlib.filter_by_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        _unclash,
        structlog.stdlib.render_to_log_kwargs,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=True,
)


class _SchedulerChatter(logging.Filter):
    """Demote APScheduler's per-run INFO lines to DEBUG (shown only when the level is DEBUG)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(SCHEDULER_CHATTER) and record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return record.levelno >= self.level


def _renderer(fmt: LogFormat, stream: IO[str]) -> list[Processor]:
    if fmt is LogFormat.AUTO:
        fmt = LogFormat.CONSOLE if _isatty(stream) else LogFormat.JSON
    if fmt is LogFormat.CONSOLE:
        return [structlog.dev.ConsoleRenderer(colors=_isatty(stream))]
    return [
        structlog.processors.EventRenamer("message"),
        _leading_keys,
        structlog.processors.JSONRenderer(),
    ]


def _leading_keys(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """When, how bad, where and what first; the context fields after (uvicorn's ANSI-coloured copy dropped)."""
    event.pop("color_message", None)
    first = {k: event.pop(k) for k in ("timestamp", "level", "logger", "message") if k in event}
    return {**first, **event}


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_logging(
    level: str | int = "INFO",
    fmt: LogFormat | str = LogFormat.AUTO,
    *,
    stream: IO[str] | None = None,
    secrets: Iterable[str] = (),
) -> logging.Handler:
    """Route every logger to one handler on `stream` (stderr): JSON lines, or readable ones for people.

    Calling it again replaces the handler it installed before (other handlers, such as pytest's, are left alone).
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    out = stream or sys.stderr
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.addFilter(_SchedulerChatter(numeric))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.ExtraAdder(),
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                # The traceback as text, so that it is redacted too (and never a dump of local variables).
                structlog.processors.format_exc_info,
                redactor([*secrets, *(os.environ.get(name, "") for name in ENVIRONMENT_SECRETS)]),
                *_renderer(LogFormat(fmt), out),
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in CHATTY_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    return handler
