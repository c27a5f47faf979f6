"""A background job's skipped runs (its previous run still going): DEBUG lines, a counter, one INFO a minute."""

from __future__ import annotations

import io
import logging

import pytest
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from prometheus_client import REGISTRY

from bot.logs import LogFormat, configure_logging
from bot.scheduler_skips import TELL_EVERY, ExpectedSkips, Skips, quiet_expected_skips
from tests.test_logs import json_lines

SKIP_WARNING = 'Execution of job "%s" skipped: maximum number of running instances reached (%d)'


def _skipped(job: str) -> float:
    return REGISTRY.get_sample_value("deploybot_job_skipped_total", {"job": job}) or 0.0


@pytest.mark.usefixtures("restore_logging")
def test_the_skip_warning_is_debug_and_other_scheduler_warnings_stay() -> None:
    scheduler = logging.getLogger("apscheduler.scheduler")
    out = io.StringIO()
    configure_logging("INFO", LogFormat.JSON, stream=out)
    quiet_expected_skips()
    quiet_expected_skips()  # once per process, however many schedulers are built
    scheduler.warning(SKIP_WARNING, "notify", 1)
    scheduler.warning("Run time of job %s was missed by %s", "reconcile", "0:00:31")
    assert [line["level"] for line in json_lines(out)] == ["warning"]
    assert sum(isinstance(f, ExpectedSkips) for f in scheduler.filters) == 1


@pytest.mark.parametrize(
    ("at", "told"),
    [
        ([0.0], [1]),  # the first skip is told at once
        ([0.0, 0.25, 0.5, 30.0], [1]),  # then nothing for a minute
        ([0.0, 0.25, 0.5, TELL_EVERY], [1, 3]),  # a minute on: the runs skipped since the last line
        ([0.0, TELL_EVERY + 1, TELL_EVERY + 2, 2 * TELL_EVERY + 1], [1, 1, 2]),
    ],
)
def test_skipped_runs_are_counted_each_and_told_once_a_minute(
    at: list[float], told: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    clock = iter(at)
    skips = Skips(monotonic=lambda: next(clock))
    job = f"job-{len(at)}-{told}"
    with caplog.at_level(logging.INFO, logger="bot.scheduler_skips"):
        for _ in at:
            skips(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, job, "default", []))
    assert _skipped(job) == len(at)
    lines = [r for r in caplog.records if r.name == "bot.scheduler_skips"]
    assert [r.levelno for r in lines] == [logging.INFO] * len(told)
    assert [r.skipped for r in lines] == told  # type: ignore[attr-defined]  # structlog's fields: record extras
