"""The request checked against the service as ECS describes it (bot/domain/preflight.py), table by table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bot.domain.enums import Strategy
from bot.domain.preflight import check_request
from bot.domain.snapshot import ServiceInfo

ADVANCED = {"alternateTargetGroupArn": "tg/green", "productionListenerRule": "rule/prod", "roleArn": "role/lb"}
LAMBDA_AT_TEST = {
    "hookTargetArn": "arn:aws:lambda:us-east-1:1:function:smoke",
    "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
}
LAMBDA_AT_SCALE = {**LAMBDA_AT_TEST, "lifecycleStages": ["PRE_SCALE_UP", "POST_SCALE_UP"]}
PAUSE_AT_TEST = {"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}


def info(
    lbs: Sequence[dict[str, Any]] = (),
    connect: bool = False,
    lattice: bool = False,
    hooks: Sequence[dict[str, Any]] = (),
) -> ServiceInfo:
    return ServiceInfo(
        service_arn="arn:svc",
        cluster="c",
        service_name="svc",
        task_definition_arn="arn:aws:ecs:us-east-1:1:task-definition/svc:2",
        container="svc",
        image="repo/svc:1",
        desired_count=2,
        deployment_configuration={"lifecycleHooks": list(hooks)},
        has_load_balancers=bool(lbs),
        has_service_connect=connect,
        load_balancers=tuple(lbs),
        has_vpc_lattice=lattice,
    )


PLAIN_LB = {"targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:1:targetgroup/svc-blue/abc"}
GOOD_LB = {**PLAIN_LB, "advancedConfiguration": ADVANCED}
HALF_LB = {**PLAIN_LB, "advancedConfiguration": {"alternateTargetGroupArn": "tg/green"}}


@pytest.mark.parametrize(
    ("strategy", "service", "rule"),
    [
        (Strategy.ROLLING, info([PLAIN_LB]), None),
        (Strategy.BLUE_GREEN, info([PLAIN_LB]), "lb_not_advanced"),
        (Strategy.CANARY, info([HALF_LB]), "lb_not_advanced"),
        (Strategy.LINEAR, info([GOOD_LB, PLAIN_LB]), "lb_not_advanced"),  # every load balancer needs it
        (Strategy.CANARY, info([GOOD_LB]), None),
        (Strategy.BLUE_GREEN, info(), None),  # headless: ECS swaps the tasks
        (Strategy.CANARY, info(), "nothing_to_shift"),
        (Strategy.LINEAR, info(connect=True), None),  # Service Connect shifts traffic
        (Strategy.CANARY, info(lattice=True), None),  # so does VPC Lattice: not headless
        (Strategy.ROLLING, info(hooks=[LAMBDA_AT_TEST]), "hook_never_runs"),
        (Strategy.ROLLING, info(hooks=[LAMBDA_AT_SCALE]), None),
        (Strategy.ROLLING, info(hooks=[PAUSE_AT_TEST]), None),  # pauses are DeployBot's own, rewritten each time
        (Strategy.BLUE_GREEN, info(hooks=[LAMBDA_AT_TEST]), None),
    ],
)
def test_check_request(strategy: Strategy, service: ServiceInfo, rule: str | None) -> None:
    refusal = check_request("svc", strategy, service)
    assert (refusal.rule if refusal else None) == rule


@pytest.mark.parametrize(
    ("bakes", "rule"), [([0, 1440], None), ([1441], "bake_out_of_range"), ([-1], "bake_out_of_range")]
)
def test_bakes_within_what_ecs_takes(bakes: list[int], rule: str | None) -> None:
    refusal = check_request("svc", Strategy.BLUE_GREEN, info(), bakes)
    assert (refusal.rule if refusal else None) == rule


def test_refusal_names_what_is_missing_and_the_way_out() -> None:
    refusal = check_request("orders", Strategy.BLUE_GREEN, info([HALF_LB]))
    assert refusal is not None and refusal.instead is Strategy.ROLLING
    assert "`svc-blue/abc`" in refusal.reason and "productionListenerRule, roleArn" in refusal.reason
