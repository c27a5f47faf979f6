"""The deployment is read from UpdateService's answer; one that ended before the first poll is tracked to its end.

Run under every value of the sandbox's `update_service_current_deployment` switch, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()
CURRENT = ["new", "absent", "previous"]
THROTTLED = {"operation": "ListServiceDeployments", "code": "ThrottlingException"}


def _finish_on_ecs(h: Harness, arn: str) -> None:
    while h.control.wake(arn):
        pass


def _latest_arn(h: Harness, service: str) -> str:
    client = h.usecases.deployments.ecs.client("us-east-1")
    briefs = client.list_service_deployments(cluster="unicorn-watch", service=service)["serviceDeployments"]
    return str(briefs[0]["serviceDeploymentArn"])


@pytest.mark.parametrize("current", CURRENT)
def test_a_deployment_that_ended_before_the_first_poll_is_tracked_to_its_outcome(
    harness: Harness, current: str
) -> None:
    harness.control.post("switch", {"name": "update_service_current_deployment", "value": current})
    # Listing is throttled while the deployment starts: where UpdateService does not name it, nothing finds it yet.
    harness.control.post("fault", {**THROTTLED, "rate": 1})
    answer = harness.usecases.handle(actor(), grammar.parse("orders", CATALOG))
    assert answer.ok and answer.deployment_id, answer.text
    dep = answer.deployment_id
    _finish_on_ecs(harness, _latest_arn_unthrottled(harness, "orders"))
    harness.control.post("fault", {**THROTTLED, "rate": 0})
    assert (harness.view(dep).ecs_deployment_arn is not None) == (current == "new")
    done = harness.run_until(dep, lambda v: not v.is_active, limit=5)
    assert done.status is DeploymentStatus.SUCCEEDED
    assert done.ecs_deployment_arn == _latest_arn(harness, "orders")
    kinds = [e.kind for e in done.events]
    assert EventKind.START_FAILED not in kinds and kinds.count(EventKind.FINISHED) == 1
    finished = next(e for e in done.events if e.kind is EventKind.FINISHED)
    assert finished.detail["outcome"] == "SUCCEEDED" and finished.detail["ecs_status"] == "SUCCESSFUL"
    if current == "new":  # read from the answer: no listing needed at all
        listed = [c for c in harness.control.calls("ListServiceDeployments") if "createdAt" in c["parameters"]]
        assert listed == []  # (the test's own look-ups name no createdAt)


def _latest_arn_unthrottled(h: Harness, service: str) -> str:
    h.control.post("fault", {**THROTTLED, "rate": 0})
    try:
        return _latest_arn(h, service)
    finally:
        h.control.post("fault", {**THROTTLED, "rate": 1})
