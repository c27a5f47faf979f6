"""Prometheus metrics of the AWS gateway: calls, errors and throttles by ECS operation (a closed set of names)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram

THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "RequestLimitExceeded", "TooManyRequestsException"})

CALLS = Counter("deploybot_ecs_calls_total", "ECS calls made by the gateway (its retries included)", ["operation"])
ERRORS = Counter(
    "deploybot_ecs_errors_total",
    "ECS calls that failed after the gateway's retries, by kind: throttled, server, connection, refused",
    ["operation", "kind"],
)
THROTTLES = Counter(
    "deploybot_ecs_throttles_total",
    "Throttled ECS attempts, including those the gateway retried successfully",
    ["operation"],
)
SECONDS = Histogram(
    "deploybot_ecs_call_duration_seconds",
    "Duration of one ECS call, the gateway's retries included",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


def error_kind(code: str, temporary: bool) -> str:
    """The `kind` label of a failed call: throttled, server (ECS failed on its side) or refused (our request)."""
    if code in THROTTLING_CODES:
        return "throttled"
    return "server" if temporary else "refused"


def count_throttled_attempt(response: Any = None, operation: Any = None, **_: Any) -> None:
    """botocore `needs-retry` handler: count an attempt ECS throttled. Returns None, so it never changes a retry."""
    if not isinstance(response, tuple) or len(response) != 2 or not isinstance(response[1], dict):
        return
    code = (response[1].get("Error") or {}).get("Code")
    if code in THROTTLING_CODES:
        THROTTLES.labels(getattr(operation, "name", "unknown")).inc()
