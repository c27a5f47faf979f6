"""A bounded retry for the Slack calls of one request (on a worker thread: sleeping there is fine, not on an ack)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from slack_sdk.errors import SlackClientError

from bot.domain.enums import SlackFailureKind
from bot.logs import get_logger
from bot.slack.errors import classify
from bot.slack.health import SlackHealth

log = get_logger(__name__)


class SlackRetry(OSError):
    """A Slack answer outside the Web API (a response_url's HTTP 429/5xx) that is worth one more try."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # a 429's Retry-After: no sooner, or Slack answers 429 again


T = TypeVar("T")
ATTEMPTS = 3
MAX_WAIT_SECONDS = 8.0  # all waits of one call together: a person is waiting for the answer
BACKOFF_SECONDS = 0.5


def with_retries(
    call: Callable[[], T],
    what: str,
    *,
    idempotent: bool = True,
    server_errors: bool = False,
    health: SlackHealth | None = None,
    attempts: int = ATTEMPTS,
    max_wait: float = MAX_WAIT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`call()`, again after a 429 (honouring Retry-After), a 5xx or a dropped connection, within `max_wait`.

    A call that may already have taken effect (fatal_error, a timeout) is repeated only when `idempotent`; with
    `server_errors`, a 5xx page is repeated anyway (slack_sdk's ServerErrorRetryHandler's rule), for an answer
    nobody can look up afterwards, where showing it twice is better than losing it.
    Permanent errors raise at once; a bot-level one is recorded in `health`.
    """
    waited = 0.0
    for attempt in range(1, attempts + 1):
        try:
            result = call()
        except (SlackClientError, OSError) as exc:
            failure = classify(exc)
            if isinstance(exc, SlackRetry):
                failure = replace(failure, kind=SlackFailureKind.RETRY, retry_after=exc.retry_after)
            if failure.kind is SlackFailureKind.BOT and health is not None:
                health.bot_error(failure.code, what)
            server_error = server_errors and (failure.status or 0) >= 500
            maybe_done = failure.kind is SlackFailureKind.LOOKUP and (idempotent or server_error)
            again = failure.kind is SlackFailureKind.RETRY or maybe_done
            wait = failure.retry_after if failure.retry_after is not None else BACKOFF_SECONDS * 2 ** (attempt - 1)
            if not again or attempt == attempts or waited + wait > max_wait:
                raise
            log.info("%s failed (%s); trying again in %.1f s", what, failure.code, wait)
            sleep(wait)
            waited += wait
            continue
        if health is not None:
            health.ok()
        return result
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
