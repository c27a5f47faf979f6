"""Prometheus metrics of the use cases: how deployments end, and what each reconcile pass did."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from bot.domain.enums import DeploymentStatus, Strategy

OUTCOMES = Counter(
    "deploybot_deployment_outcomes_total",
    "Deployments that ended, by final status (SUCCEEDED, ROLLED_BACK, FAILED…) and strategy",
    ["outcome", "strategy"],
)
PASS_SECONDS = Histogram(
    "deploybot_reconcile_pass_seconds",
    "Duration of one reconcile pass",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
PASS_DEPLOYMENTS = Histogram(
    "deploybot_reconcile_pass_deployments",
    "Active deployments claimed by one reconcile pass",
    buckets=(0, 1, 5, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000),
)
DELAYED = Counter(
    "deploybot_reconcile_delayed_total", "Deployments a pass left for later because ECS was throttling or unavailable"
)
PASS_ERRORS = Counter("deploybot_reconcile_errors_total", "Batches a pass could not describe or write")


def count_outcome(status: DeploymentStatus, strategy: Strategy) -> None:
    """Count a deployment that just ended."""
    OUTCOMES.labels(status.value, strategy.value).inc()


def count_pass(claimed: int, delayed: int, errors: int, seconds: float) -> None:
    """Record one reconcile pass."""
    PASS_SECONDS.observe(seconds)
    PASS_DEPLOYMENTS.observe(claimed)
    DELAYED.inc(delayed)
    PASS_ERRORS.inc(errors)
