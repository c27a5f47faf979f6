"""DeployBot owns the PAUSE hooks of catalog services, whatever ECS does with hookDetails on them.

Run under every value of the sandbox's `pause_hook_details` switch (drop, echo, reject), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from mypy_boto3_ecs.type_defs import DeploymentConfigurationTypeDef

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()
MODES = ["drop", "echo", "reject"]
LAMBDA = {
    "targetType": "AWS_LAMBDA",
    "hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:succeed",
    "roleArn": "arn:aws:iam::123456789012:role/ecsLifecycleHookInvokeRole",
    "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
    "hookDetails": {"suite": "smoke"},
}
# What an older DeployBot (or a person) left in the configuration: a pause carrying a marker.
OLD_PAUSE = {"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"], "hookDetails": {"deploybot": "approval"}}


def _configuration(h: Harness, service: str = "ui") -> dict[str, Any]:
    client = h.usecases.deployments.ecs.client("us-east-1")
    found = client.describe_services(cluster="unicorn-watch", services=[service])["services"][0]
    return dict(found["deploymentConfiguration"])


def _seed_hooks(h: Harness, service: str = "ui") -> None:
    """The configuration holds a pause and a Lambda hook before DeployBot deploys it (kept as ECS echoes them)."""
    h.control.post("switch", {"name": "pause_hook_details", "value": "echo"})
    config = {**_configuration(h, service), "lifecycleHooks": [OLD_PAUSE, LAMBDA]}
    h.usecases.deployments.ecs.client("us-east-1").update_service(
        cluster="unicorn-watch", service=service, deploymentConfiguration=cast("DeploymentConfigurationTypeDef", config)
    )


def _deploy_and_approve(h: Harness, tag: str) -> None:
    answer = h.usecases.handle(actor("U0ALICE"), grammar.parse(f"ui bluegreen image=:{tag}", CATALOG))
    assert answer.ok and answer.deployment_id, answer.text
    dep = answer.deployment_id
    view = h.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    assert [a.stage for a in view.awaiting] == ["POST_TEST_TRAFFIC_SHIFT"]  # derived, not read from ECS
    assert h.usecases.decisions.approve(actor("U0BOB", source="button"), dep).ok
    done = h.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
    awaited = [e.detail for e in done.events if e.kind is EventKind.HOOK_AWAITING]
    assert [d["stage"] for d in awaited] == ["POST_TEST_TRAFFIC_SHIFT"]


@pytest.mark.parametrize("mode", MODES)
def test_three_deployments_leave_exactly_the_catalogs_pauses_and_the_lambda_hook(harness: Harness, mode: str) -> None:
    _seed_hooks(harness)
    seeded = len(harness.control.calls("UpdateService"))
    harness.control.post("switch", {"name": "pause_hook_details", "value": mode})
    for tag in ("1.3.0", "1.3.1", "1.3.2"):
        _deploy_and_approve(harness, tag)
    hooks = _configuration(harness)["lifecycleHooks"]
    pauses = [h for h in hooks if h.get("targetType") == "PAUSE"]
    assert [p["lifecycleStages"] for p in pauses] == [["POST_TEST_TRAFFIC_SHIFT"]]  # services.example.yml's ui
    assert [h for h in hooks if h.get("targetType") != "PAUSE"] == [LAMBDA]
    sent = harness.control.calls("UpdateService")[seeded:]
    assert len(sent) == 3 and all(c["error"] is None for c in sent)
    for call in sent:
        for hook in call["parameters"]["deploymentConfiguration"].get("lifecycleHooks", []):
            assert hook.get("targetType") != "PAUSE" or "hookDetails" not in hook


@pytest.mark.parametrize("mode", MODES)
def test_a_deployment_that_needs_no_approval_removes_every_pause(harness: Harness, mode: str) -> None:
    _seed_hooks(harness, "notifications")  # the catalog asks for no approval on notifications
    harness.control.post("switch", {"name": "pause_hook_details", "value": mode})
    answer = harness.usecases.handle(actor("U0ALICE"), grammar.parse("notifications image=:3.5.0", CATALOG))
    assert answer.ok and answer.deployment_id, answer.text
    done = harness.run_until(answer.deployment_id, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED and not [
        e for e in done.events if e.kind is EventKind.HOOK_AWAITING
    ]
    assert _configuration(harness, "notifications")["lifecycleHooks"] == [LAMBDA]
