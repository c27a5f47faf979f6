"""APScheduler's skipped runs: expected while a pass outlasts its interval, counted, told once a minute."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from prometheus_client import Counter

from bot.logs import get_logger

log = get_logger(__name__)
JOB_SKIPPED = Counter(
    "deploybot_job_skipped_total", "Runs a background job skipped: its previous run was still going", ["job"]
)
TELL_EVERY = 60.0  # seconds between two lines about one job's skipped runs
SCHEDULER_LOGGER = "apscheduler.scheduler"
_SKIPPED = "maximum number of running instances reached"


class ExpectedSkips(logging.Filter):
    """Demote APScheduler's WARNING per skipped run to DEBUG: with `max_instances=1` a pass longer than its
    interval skips the next run by design (every second for the 0.25-s drain); `Skips` counts and tells them."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Always keep the record; lower the skip warning's level."""
        if record.levelno == logging.WARNING and _SKIPPED in str(record.msg):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


class Skips:
    """Listener of EVENT_JOB_MAX_INSTANCES: count each skipped run, log one INFO line per job at most a minute."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._told: dict[str, float] = {}  # job → when its last line was logged
        self._since: dict[str, int] = {}  # job → runs skipped since that line

    def __call__(self, event: object) -> None:
        """One run of `event.job_id` was skipped."""
        job = str(getattr(event, "job_id", "?"))
        JOB_SKIPPED.labels(job).inc()
        self._since[job] = self._since.get(job, 0) + 1
        now, told = self._monotonic(), self._told.get(job)
        if told is None or now - told >= TELL_EVERY:
            log.info("background job runs skipped: the previous run was still going", job=job, skipped=self._since[job])
            self._told[job], self._since[job] = now, 0


def quiet_expected_skips(logger: logging.Logger | None = None) -> None:
    """Install `ExpectedSkips` on APScheduler's scheduler logger once (it is a process-wide logger)."""
    target = logger or logging.getLogger(SCHEDULER_LOGGER)
    if not any(isinstance(f, ExpectedSkips) for f in target.filters):
        target.addFilter(ExpectedSkips())
