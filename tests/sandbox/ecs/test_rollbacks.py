"""Every rollback path: the statuses passed through, `rollback {reason, startedAt, serviceRevisionArn}`,
`statusReason`, and the weights handed back to the source revision."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from mypy_boto3_ecs import ECSClient
from mypy_boto3_ecs.type_defs import ContainerDefinitionOutputTypeDef, ServiceDeploymentTypeDef

from .helpers import CLUSTER, ROLE, Control, continue_pauses, deploy, describe, drive, lambda_arn

PAUSE = {"targetType": "PAUSE"}
Trigger = Callable[[ECSClient, Control, str], Callable[[ServiceDeploymentTypeDef], None] | None]


def _statuses(seen: list[tuple[Any, ...]]) -> list[str]:
    out: list[str] = []
    for status, *_ in seen:
        if not out or out[-1] != status:
            out.append(status)
    return out


def _broken_task_definition(ecs: ECSClient, service: str) -> str:
    td = ecs.describe_task_definition(taskDefinition=f"{service}:2")["taskDefinition"]
    container: ContainerDefinitionOutputTypeDef = {**td["containerDefinitions"][0]}
    container["image"] = container["image"].rpartition(":")[0] + ":1.3.0-broken"
    registered = ecs.register_task_definition(
        family=service,
        containerDefinitions=[container],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )
    return str(registered["taskDefinition"]["taskDefinitionArn"])


def _in_stage(stage: str, weight: float | None = None) -> Callable[[ServiceDeploymentTypeDef], bool]:
    def reached(d: ServiceDeploymentTypeDef) -> bool:
        w = d["targetServiceRevision"].get("requestedProductionTrafficWeight")
        return d.get("lifecycleStage") == stage and (weight is None or w == weight)

    return reached


def _continue_rollback(ecs: ECSClient, control: Control) -> tuple[str, Any]:
    arn = deploy(ecs, "catalog", lifecycleHooks=[{**PAUSE, "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}])
    return arn, continue_pauses(ecs, action="ROLLBACK")


def _stop_in_bake(ecs: ECSClient, control: Control) -> tuple[str, Any]:
    arn = deploy(ecs, "ui")
    drive(ecs, control, arn, until=_in_stage("BAKE_TIME"))
    ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    return arn, None


def _alarm_after_canary(ecs: ECSClient, control: Control) -> tuple[str, Any]:
    arn = deploy(ecs, "catalog", lifecycleHooks=[])
    drive(ecs, control, arn, until=_in_stage("PRODUCTION_TRAFFIC_SHIFT", 10.0))
    control.post("alarm", {"name": "catalog-5xx", "state": "ALARM"})
    return arn, None


def _circuit_breaker(ecs: ECSClient, control: Control) -> tuple[str, Any]:
    return deploy(ecs, "catalog", _broken_task_definition(ecs, "catalog"), lifecycleHooks=[]), None


def _lambda_fail(ecs: ECSClient, control: Control) -> tuple[str, Any]:
    hook = {"hookTargetArn": lambda_arn("fail"), "roleArn": ROLE, "lifecycleStages": ["POST_SCALE_UP"]}
    return deploy(ecs, "notifications", lifecycleHooks=[hook]), None


ROLLBACKS = {
    "continue-rollback": (_continue_rollback, ["ROLLBACK_IN_PROGRESS"], "continued with ROLLBACK"),
    "stop-during-bake": (_stop_in_bake, ["ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"], "StopServiceDeployment"),
    "alarm": (_alarm_after_canary, ["ROLLBACK_IN_PROGRESS"], "alarm(s) detected: catalog-5xx"),
    "circuit-breaker": (_circuit_breaker, ["ROLLBACK_IN_PROGRESS"], "circuit breaker"),
    "lambda-fail": (_lambda_fail, ["ROLLBACK_IN_PROGRESS"], "hook execution failure(s) detected"),
}


@pytest.mark.parametrize("case", list(ROLLBACKS))
def test_rollback_paths(case: str, ecs: ECSClient, control: Control) -> None:
    trigger, middle, reason = ROLLBACKS[case]
    arn, act = trigger(ecs, control)

    seen, final = drive(ecs, control, arn, act=act)

    statuses = _statuses(seen)
    assert statuses[-len(middle) - 1 :] == [*middle, "ROLLBACK_SUCCESSFUL"]
    rollback = final["rollback"]
    [source] = final["sourceServiceRevisions"]
    assert reason in rollback["reason"] and reason in final["statusReason"]
    assert rollback["serviceRevisionArn"] == source["arn"] != final["targetServiceRevision"]["arn"]
    assert final["createdAt"] <= rollback["startedAt"] <= final["finishedAt"]
    target = final["targetServiceRevision"]
    assert (target["requestedProductionTrafficWeight"], target["requestedTestTrafficWeight"]) == (0.0, 0.0)
    assert (target["runningTaskCount"], source["runningTaskCount"]) == (0, source["requestedTaskCount"])
    service = ecs.describe_services(cluster=CLUSTER, services=[final["serviceArn"]])["services"][0]
    revision = ecs.describe_service_revisions(serviceRevisionArns=[source["arn"]])["serviceRevisions"][0]
    assert service["taskDefinition"] == revision["taskDefinition"]


def test_alarm_and_breaker_fields(ecs: ECSClient, control: Control) -> None:
    arn, _ = _alarm_after_canary(ecs, control)
    alarms = describe(ecs, arn)["alarms"]
    assert alarms == {
        "status": "TRIGGERED",
        "alarmNames": ["catalog-5xx", "catalog-latency-p99"],
        "triggeredAlarmNames": ["catalog-5xx"],
    }
    control.post("reset")
    control.post("speed", {"speed": 0})
    arn, _ = _circuit_breaker(ecs, control)
    seen, final = drive(ecs, control, arn)
    assert ("IN_PROGRESS", "SCALE_UP", 0.0, ()) in seen and seen[-1][1] == "SCALE_UP"
    assert final["deploymentCircuitBreaker"] == {"status": "TRIGGERED", "failureCount": 3, "threshold": 3}


def test_alarm_without_rollback_ends_stopped(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs, "catalog", lifecycleHooks=[], alarms={"alarmNames": ["catalog-5xx"], "enable": True, "rollback": False}
    )
    control.advance(10)
    control.post("alarm", {"name": "catalog-5xx", "state": "ALARM"})
    final = describe(ecs, arn)
    assert final["status"] == "STOPPED" and "rollback" not in final and "catalog-5xx" in final["statusReason"]


def test_breaker_without_rollback_ends_stopped(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs,
        "catalog",
        _broken_task_definition(ecs, "catalog"),
        lifecycleHooks=[],
        deploymentCircuitBreaker={"enable": True, "rollback": False},
    )
    _, final = drive(ecs, control, arn)
    assert final["status"] == "STOPPED" and "rollback" not in final
    assert final["deploymentCircuitBreaker"]["status"] == "TRIGGERED"


def test_alarm_already_firing_at_start_is_ignored(ecs: ECSClient, control: Control) -> None:
    control.post("alarm", {"name": "catalog-5xx", "state": "ALARM"})
    arn = deploy(ecs, "catalog", lifecycleHooks=[])
    control.post("alarm", {"name": "catalog-5xx", "state": "ALARM"})
    _, final = drive(ecs, control, arn)
    assert final["status"] == "SUCCESSFUL" and final["alarms"]["status"] == "MONITORING_COMPLETE"


def test_pause_timeout_rolls_back_within_one_big_advance(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs,
        "ui",
        lifecycleHooks=[
            {**PAUSE, "lifecycleStages": ["POST_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 60}}
        ],
    )

    control.advance(10 * 3600)

    final = describe(ecs, arn)
    [hook] = final["lifecycleHookDetails"]
    assert (final["status"], final["lifecycleStage"], hook["status"]) == (
        "ROLLBACK_SUCCESSFUL",
        "POST_SCALE_UP",
        "TIMED_OUT",
    )
    assert final["rollback"]["startedAt"] == hook["expiresAt"]
    assert "timed out" in final["rollback"]["reason"]
    assert (final["finishedAt"] - hook["expiresAt"]).total_seconds() < 60


def test_pause_timeout_with_continue_action_proceeds(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs,
        "ui",
        lifecycleHooks=[
            {
                **PAUSE,
                "lifecycleStages": ["POST_SCALE_UP"],
                "timeoutConfiguration": {"timeoutInMinutes": 1, "action": "CONTINUE"},
            }
        ],
    )
    control.advance(3600)
    final = describe(ecs, arn)
    assert final["status"] == "SUCCESSFUL" and "rollback" not in final


def test_failing_traffic_hook_during_rollback_ends_rollback_failed(ecs: ECSClient, control: Control) -> None:
    hook = {"hookTargetArn": lambda_arn("fail"), "roleArn": ROLE, "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"]}
    arn = deploy(ecs, "ui", lifecycleHooks=[hook])

    seen, final = drive(ecs, control, arn)

    assert _statuses(seen)[-2:] == ["ROLLBACK_IN_PROGRESS", "ROLLBACK_FAILED"]
    assert final["rollback"]["serviceRevisionArn"] == final["sourceServiceRevisions"][0]["arn"]
    assert final["statusReason"].startswith("rollback failed")


def test_slow_lambda_answers_in_progress_then_succeeds(ecs: ECSClient, control: Control) -> None:
    hook = {"hookTargetArn": lambda_arn("slow"), "roleArn": ROLE, "lifecycleStages": ["POST_SCALE_UP"]}
    arn = deploy(ecs, "notifications", lifecycleHooks=[hook])
    seen, _ = drive(ecs, control, arn, until=_in_stage("TEST_TRAFFIC_SHIFT"))
    in_progress = ("IN_PROGRESS", "POST_SCALE_UP", 0.0, ("AWS_LAMBDA:IN_PROGRESS",))
    assert in_progress in seen
    assert ("IN_PROGRESS", "POST_SCALE_UP", 0.0, ("AWS_LAMBDA:SUCCEEDED",)) in seen
    calls = [c for c in control.get("calls?operation=DescribeServiceDeployments")["calls"]]
    assert calls  # the poller's calls are logged


def test_stop_on_a_stopping_or_rolling_back_deployment_continues_it(ecs: ECSClient, control: Control) -> None:
    # "continues to stop" / "continues the rollback" (Stopping Amazon ECS service deployments): no error.
    first = deploy(ecs, "ui")
    control.advance(30)
    second = deploy(ecs, "ui", "ui:2")
    assert describe(ecs, first)["status"] == "STOP_REQUESTED"
    assert ecs.stop_service_deployment(serviceDeploymentArn=first, stopType="ROLLBACK")["serviceDeploymentArn"] == first
    assert describe(ecs, first)["status"] == "STOP_REQUESTED"
    control.advance(30)
    ecs.stop_service_deployment(serviceDeploymentArn=second, stopType="ROLLBACK")
    assert describe(ecs, second)["status"] == "ROLLBACK_REQUESTED"
    ecs.stop_service_deployment(serviceDeploymentArn=second, stopType="ROLLBACK")
    _, final = drive(ecs, control, second)
    assert final["status"] == "ROLLBACK_SUCCESSFUL" and describe(ecs, first)["status"] == "STOPPED"
