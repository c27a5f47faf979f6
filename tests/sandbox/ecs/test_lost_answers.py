"""Faults after the work: the call is applied and its answer lost (5xx, throttle, or no answer), as in a timeout."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError
from mypy_boto3_ecs import ECSClient

from .helpers import Control, deploy, drive

PAUSE = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}


def _paused(ecs: ECSClient, control: Control) -> tuple[str, str]:
    arn = deploy(ecs, "ui", lifecycleHooks=[PAUSE])
    _, d = drive(ecs, control, arn, until=lambda d: bool(d.get("lifecycleHookDetails")))
    return arn, d["lifecycleHookDetails"][0]["hookId"]


def _hook_status(ecs: ECSClient, arn: str, hook_id: str) -> str | None:
    d = ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
    return next((h["status"] for h in d.get("lifecycleHookDetails", []) if h["hookId"] == hook_id), None)


def test_an_applied_call_answered_with_an_error(ecs_strict: ECSClient, control: Control) -> None:
    code = "ServerException"
    arn, hook = _paused(ecs_strict, control)
    control.post("fault", {"operation": "ContinueServiceDeployment", "code": code, "rate": 1, "after": True})
    with pytest.raises(ClientError) as caught:
        ecs_strict.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook, action="CONTINUE")
    assert caught.value.response["Error"]["Code"] == code
    assert _hook_status(ecs_strict, arn, hook) in ("SUCCEEDED", None)  # it did take effect
    # The resend ECS would get from a retry: the pause no longer waits.
    with pytest.raises(ClientError) as again:
        ecs_strict.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook, action="CONTINUE")
    assert again.value.response["Error"]["Code"] == "InvalidParameterException"
    calls = control.get("calls?operation=ContinueServiceDeployment")["calls"]
    assert [(c["applied"], c["error"]) for c in calls] == [(True, code), (False, "InvalidParameterException")]


def test_an_applied_call_whose_answer_never_comes(ecs_strict: ECSClient, control: Control) -> None:
    arn, hook = _paused(ecs_strict, control)
    control.post("fault", {"operation": "ContinueServiceDeployment", "code": "Timeout", "rate": 1, "after": True})
    with pytest.raises(ConnectionClosedError):
        ecs_strict.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook, action="CONTINUE")
    assert _hook_status(ecs_strict, arn, hook) in ("SUCCEEDED", None)
    assert control.get("state")["faultsAfter"] == {"ContinueServiceDeployment": {"code": "Timeout", "rate": 1}}


def test_a_call_lost_on_the_way_in_does_nothing(ecs_strict: ECSClient, control: Control) -> None:
    arn, hook = _paused(ecs_strict, control)
    control.post("fault", {"operation": "ContinueServiceDeployment", "code": "Timeout", "rate": 1})
    with pytest.raises(ConnectionClosedError):
        ecs_strict.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook, action="CONTINUE")
    assert _hook_status(ecs_strict, arn, hook) == "AWAITING_ACTION"
