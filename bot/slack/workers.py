"""The bounded worker pool behind the listeners: they ack at once and queue the slow part (ECS, database, Slack).

Bolt's own listener pool has five threads and counts time spent waiting for one against the 3 s ack; a listener
that acked and then called ECS kept its thread, so the sixth concurrent request was answered 404 while its work
still ran later. Here the ack comes from the request's thread and the work waits in a queue of known size; when
the queue is full the listener says "busy, try again" in the ack instead of dropping the request.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from bot.logs import get_logger

log = get_logger(__name__)
QUEUED = Gauge("deploybot_work_queued", "Requests waiting for a worker", ["pool"])
REJECTED = Counter("deploybot_work_rejected_total", "Requests answered busy because the queue was full", ["pool"])
WAITED = Histogram(
    "deploybot_work_wait_seconds",
    "Time from the ack to a worker picking the request up",
    ["pool"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
FAILED = Counter("deploybot_work_failed_total", "Queued requests whose work raised", ["pool"])


@dataclass
class Job:
    """One request's slow part, and what to do if the pool stops before running it."""

    name: str
    run: Callable[[], object]
    abandon: Callable[[], object] | None = None
    queued_at: float = field(default_factory=time.monotonic)


class WorkPool:
    """`workers` threads draining a queue of at most `capacity` jobs; `submit` never blocks."""

    def __init__(self, name: str = "work", *, workers: int = 8, capacity: int = 500) -> None:
        self.name = name
        self.capacity = capacity
        self._queue: queue.Queue[Job | None] = queue.Queue(maxsize=capacity)
        self._accepting = True
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._work, name=f"deploybot-{name}-{i}", daemon=True) for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, name: str, run: Callable[[], object], abandon: Callable[[], object] | None = None) -> bool:
        """Queue a job; False (and nothing queued) when the queue is full or the pool is stopping."""
        with self._lock:
            if not self._accepting:
                return False
            try:
                # The job keeps the request's log context (request id, user, channel) on the worker thread.
                context = contextvars.copy_context()
                self._queue.put_nowait(Job(name, lambda: context.run(run), abandon))
            except queue.Full:
                REJECTED.labels(self.name).inc()
                log.warning("%s pool full (%d queued): answered busy to %s", self.name, self.capacity, name)
                return False
        QUEUED.labels(self.name).set(self._queue.qsize())
        return True

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            QUEUED.labels(self.name).set(self._queue.qsize())
            WAITED.labels(self.name).observe(time.monotonic() - job.queued_at)
            try:
                job.run()
            except Exception:  # a job reports to its person itself; this only keeps the worker alive
                FAILED.labels(self.name).inc()
                log.exception("%s job %s failed", self.name, job.name)

    def shutdown(self, timeout: float = 10.0) -> int:
        """Stop accepting, let queued jobs run for up to `timeout` s, abandon the rest; return how many were."""
        with self._lock:
            self._accepting = False
        deadline = time.monotonic() + timeout
        while not self._queue.empty() and time.monotonic() < deadline:
            time.sleep(0.05)
        abandoned = self._abandon_queued()
        for _ in self._threads:
            self._queue.put(None, timeout=1)
        for thread in self._threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))
        return abandoned

    def _abandon_queued(self) -> int:
        count = 0
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return count
            if job is None:
                continue
            count += 1
            if job.abandon is not None:
                try:
                    job.abandon()
                except Exception:
                    log.exception("could not tell anyone that %s was abandoned", job.name)
