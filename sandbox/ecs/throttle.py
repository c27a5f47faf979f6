"""Request throttling with ECS's per-account token buckets, and injected faults."""

from __future__ import annotations

import random
import threading
import time

from .errors import EcsError

TIMEOUT = "Timeout"  # not an ECS code: the sandbox closes the connection without answering

# (burst, sustained per second) per bucket; operations sharing a bucket share a budget.
BUCKETS: dict[str, tuple[float, float]] = {
    "deployments": (50, 20),
    "revisions": (50, 20),
    "services-read": (100, 20),
    "services-write": (50, 5),
    "register": (20, 1),
}
BUCKET_OF = {
    "DescribeServiceDeployments": "deployments",
    "ListServiceDeployments": "deployments",
    "DescribeServiceRevisions": "revisions",
    "DescribeServices": "services-read",
    "ListServices": "services-read",
    "CreateService": "services-write",
    "UpdateService": "services-write",
    "RegisterTaskDefinition": "register",
}


class Throttle:
    """Token buckets (off by default) plus probabilistic fault injection per operation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.enabled = False
        self._tokens: dict[str, tuple[float, float]] = {}
        self._faults: dict[str, tuple[str, float]] = {}
        # A 5xx after the change was made: the call landed, the client cannot know (what makes retries unsafe).
        self._after: dict[str, tuple[str, float]] = {}  # code, rate
        self._latency = (0.0, 0.0)
        self._latency_of: frozenset[str] = frozenset()  # operations the latency applies to; empty: every one
        self._latency_for: frozenset[str] = frozenset()  # callers (access key ids) it applies to; empty: every one

    def reset(self) -> None:
        """Turn throttling off, refill the buckets and clear faults."""
        with self._lock:
            self.enabled = False
            self._tokens.clear()
            self._faults.clear()
            self._after.clear()
            self._latency = (0.0, 0.0)
            self._latency_of = frozenset()
            self._latency_for = frozenset()

    def set_enabled(self, enabled: bool) -> None:
        """Switch throttling on or off (buckets start full)."""
        with self._lock:
            self.enabled = enabled
            self._tokens.clear()

    def set_fault(self, operation: str, code: str, rate: float) -> None:
        """Fail `operation` ('*' for all) with `code` at probability `rate`; rate 0 clears."""
        with self._lock:
            if rate <= 0:
                self._faults.pop(operation, None)
            else:
                self._faults[operation] = (code, rate)

    def set_fault_after(self, operation: str, rate: float, code: str = "ServerException") -> None:
        """Answer `operation` ('*' for all) with `code` at probability `rate` after doing it; 0 clears.

        `Timeout` gives no answer at all (the connection closes): what a client sees after a read timeout.
        """
        with self._lock:
            if rate <= 0:
                self._after.pop(operation, None)
            else:
                self._after[operation] = (code, rate)

    def set_latency(
        self, low: float, high: float, operations: frozenset[str] = frozenset(), callers: frozenset[str] = frozenset()
    ) -> None:
        """Delay calls (of `operations`, by `callers`; all when empty) by a uniform random [low, high] s (real time)."""
        with self._lock:
            self._latency, self._latency_of, self._latency_for = (low, high), operations, callers

    def delay(self, operation: str, caller: str | None = None) -> float:
        """The latency to add to this call (made with access key `caller`), in seconds."""
        with self._lock:
            low, high = self._latency
            applies = not self._latency_of or operation in self._latency_of
            applies = applies and (not self._latency_for or caller in self._latency_for)
        return random.uniform(low, high) if high > 0 and applies else 0.0

    def lost_answer(self, operation: str) -> EcsError | None:
        """The fault replacing the answer of a call that was done, when an after-fault says so."""
        with self._lock:
            fault = self._after.get(operation) or self._after.get("*")
        if fault is not None and random.random() < fault[1]:
            return _fault_error(fault[0])
        return None

    def faults_after(self) -> dict[str, tuple[str, float]]:
        """Current after-faults (the call is done, its answer lost)."""
        with self._lock:
            return dict(self._after)

    def faults(self) -> dict[str, tuple[str, float]]:
        """Current fault injections."""
        with self._lock:
            return dict(self._faults)

    def check(self, operation: str) -> None:
        """Raise the injected fault or ThrottlingException when this call must be refused."""
        with self._lock:
            fault = self._faults.get(operation) or self._faults.get("*")
            bucket = BUCKET_OF.get(operation) if self.enabled else None
            allowed = self._take(bucket) if bucket else True
        if fault is not None and random.random() < fault[1]:
            raise _fault_error(fault[0])
        if not allowed:
            raise EcsError("ThrottlingException", "Rate exceeded")

    def _take(self, bucket: str) -> bool:
        # Real time, not sandbox time: the limits are about how fast clients call.
        burst, rate = BUCKETS[bucket]
        now = time.monotonic()
        tokens, last = self._tokens.get(bucket, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self._tokens[bucket] = (tokens, now)
            return False
        self._tokens[bucket] = (tokens - 1, now)
        return True


def _fault_error(code: str) -> EcsError:
    if code == "ThrottlingException":
        return EcsError(code, "Rate exceeded")
    if code == TIMEOUT:
        return EcsError(code, "no answer: the connection is closed")
    return EcsError(code, "Injected fault: the sandbox was asked to fail this call")
