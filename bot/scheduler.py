"""Background jobs (APScheduler): reconcile active deployments, drain the Slack outbox."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import Counter, Histogram

from bot.logs import get_logger
from bot.scheduler_skips import Skips, quiet_expected_skips
from bot.slack.context import BotContext
from bot.slack.sender import OutboxSender

log = get_logger(__name__)
JOB_SECONDS = Histogram("deploybot_job_seconds", "Duration of one background job run", ["job"])
JOB_ERRORS = Counter("deploybot_job_errors_total", "Background job runs that raised", ["job"])
NOTIFY_SECONDS = 0.25  # a channel's next turn comes 1 s after its last post really went: look often for it


def _guarded(name: str, work: Callable[[], Any]) -> Callable[[], None]:
    def run() -> None:
        started = time.monotonic()
        try:
            work()
        except Exception:
            # A failing pass must not kill the job: the next run starts from the database again.
            JOB_ERRORS.labels(name).inc()
            log.exception("background job %s failed", name)
        finally:
            JOB_SECONDS.labels(name).observe(time.monotonic() - started)

    return run


def build_scheduler(ctx: BotContext, sender: OutboxSender) -> BackgroundScheduler:
    """Jobs that run one instance at a time and coalesce missed runs (a slow pass is never run twice at once)."""
    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )
    # A run skipped because the previous one is still going is expected (a pass longer than its interval): counted
    # (deploybot_job_skipped_total) and told once a minute, not a WARNING per skipped run.
    quiet_expected_skips()
    scheduler.add_listener(Skips(), EVENT_JOB_MAX_INSTANCES)
    now = datetime.now(UTC)
    scheduler.add_job(
        _guarded("reconcile", ctx.usecases.reconciler.reconcile_once),
        "interval",
        seconds=ctx.settings.poll_seconds,
        id="reconcile",
        next_run_time=now,
    )
    scheduler.add_job(
        _guarded("notify", sender.drain_once), "interval", seconds=NOTIFY_SECONDS, id="notify", next_run_time=now
    )
    return scheduler
