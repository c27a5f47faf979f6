"""The engine's stories under every undocumented ECS behaviour the sandbox can switch (issue 10 item 6).

Each story runs with the sandbox's defaults and with each alternative value of each switch (sandbox/ecs/switches.py,
one switch at a time). Under every one the outcome is right and what the bot tells is true: a pause is placed at
its stage or at none (never at a wrong one), a step bake is never told as the final bake, a stop is never told as
a rollback. A few stories, not the whole suite, keep this affordable.
"""

from __future__ import annotations

from datetime import datetime

import boto3
import pytest

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.readmodels import DeploymentView
from bot.slack.blocks.events import event_message
from bot.slack.blocks.root import root_message
from sandbox.ecs.switches import alternatives
from tests.engine.test_engine import CATALOG, approve_until_done, awaiting, deploy, kinds
from tests.support import Harness, actor

SETTINGS = [None, *alternatives()]
IDS = ["defaults", *(f"{name}={value}" for name, value in alternatives())]


@pytest.fixture(params=SETTINGS, ids=IDS)
def switched(request: pytest.FixtureRequest, harness: Harness) -> Harness:
    if request.param is not None:
        name, value = request.param
        harness.control.post("switch", {"name": name, "value": value})
    return harness


def told(view: DeploymentView) -> list[str]:
    """Every thread reply and the root message's text, as Slack would show them."""
    service = CATALOG.get(view.service_key)
    now = datetime.now().astimezone()
    lines = [str(root_message(view, service, now).text)]
    for event in view.events:
        message = event_message(view, event, service, now)
        if message is not None:
            lines.append(str(message.text))
    return lines


def test_canary_with_two_approvals(switched: Harness) -> None:
    dep = deploy(switched, "catalog canary 10% canary-bake=2m")
    done = approve_until_done(switched, dep)
    assert done.status is DeploymentStatus.SUCCEEDED
    waits = kinds(done, EventKind.HOOK_AWAITING)
    assert len(waits) == 2 and {w["stage"] for w in waits} <= {"PRE_PRODUCTION_TRAFFIC_SHIFT", None}
    assert [b["kind"] for b in kinds(done, EventKind.BAKE_STARTED)] == ["step", "final"]
    steps = [(d["production_weight"], d.get("step")) for d in kinds(done, EventKind.TRAFFIC_MOVED) if d.get("step")]
    assert steps == [(10.0, 1), (100.0, 2)]
    assert not any("test traffic" in line for line in told(done)), told(done)


def test_rolling_update_with_an_approval(switched: Harness) -> None:
    dep = deploy(switched, "orders rolling approve=post_scale_up")
    waiting = switched.run_until(dep, awaiting)
    assert waiting.awaiting[0].stage in ("POST_SCALE_UP", None)
    done = approve_until_done(switched, dep)
    assert done.status is DeploymentStatus.SUCCEEDED
    assert not any("green" in line for line in told(done)), told(done)  # a rolling update has no green


def test_blue_green_rolled_back_during_the_bake(switched: Harness) -> None:
    dep = deploy(switched, "notifications bluegreen image=:3.5.0")
    switched.run_until(dep, lambda v: v.lifecycle_stage is not None and v.lifecycle_stage.value == "BAKE_TIME")
    assert switched.usecases.decisions.rollback(actor("U0CAROL", "C0INC42"), dep, None, "error rate").ok
    done = switched.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.ROLLED_BACK
    assert kinds(done, EventKind.ROLLBACK_STARTED)[0]["cause"] == "user"


def test_a_deployment_replaced_from_outside_is_never_told_as_a_rollback(switched: Harness) -> None:
    dep = deploy(switched, "ui bluegreen approve=test")
    switched.run_until(dep, awaiting)
    ecs = boto3.client("ecs", region_name="us-east-1", endpoint_url=switched.control.url)
    ecs.update_service(cluster="unicorn-watch", service="ui", forceNewDeployment=True)  # someone, not the bot
    done = switched.run_until(dep, lambda v: not v.is_active)
    assert done.status in (DeploymentStatus.SUPERSEDED, DeploymentStatus.STOPPED)
    assert not any("rolled back" in line or "Rolling back" in line for line in told(done)), told(done)
