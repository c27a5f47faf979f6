"""What ECS refuses, the sandbox refuses: AWS's error code and a message naming the field."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ecs import ECSClient

from .helpers import CLUSTER, ROLE, Control, deploy, lambda_arn

PAUSE = {"targetType": "PAUSE"}
BG = {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5}
CANARY = {"strategy": "CANARY", "bakeTimeInMinutes": 5}
LINEAR = {"strategy": "LINEAR", "bakeTimeInMinutes": 5}
UNKNOWN_DEPLOYMENT = "arn:aws:ecs:us-east-1:123456789012:service-deployment/unicorn-watch/ui/doesNotExist123456789"

# (service, deploymentConfiguration, text the message must contain). The configurations break ECS's rules, some
# its types too (strategy RED_BLACK), so they are Any rather than DeploymentConfigurationTypeDef.
BAD_CONFIGS: dict[str, tuple[str, Any, str]] = {
    "canary-percent-zero": ("ui", {**CANARY, "canaryConfiguration": {"canaryPercent": 0.0}}, "canaryPercent"),
    "canary-percent-over-100": ("ui", {**CANARY, "canaryConfiguration": {"canaryPercent": 100.5}}, "canaryPercent"),
    "canary-percent-not-tenths": ("ui", {**CANARY, "canaryConfiguration": {"canaryPercent": 10.05}}, "canaryPercent"),
    "canary-bake-too-long": (
        "ui",
        {**CANARY, "canaryConfiguration": {"canaryBakeTimeInMinutes": 1441}},
        "canaryBakeTimeInMinutes",
    ),
    "linear-step-under-3": ("ui", {**LINEAR, "linearConfiguration": {"stepPercent": 2.9}}, "stepPercent"),
    "bake-time-too-long": ("ui", {**BG, "bakeTimeInMinutes": 1441}, "bakeTimeInMinutes"),
    "canary-config-without-canary": (
        "ui",
        {**BG, "canaryConfiguration": {"canaryPercent": 10.0}},
        "canaryConfiguration",
    ),
    "linear-config-without-linear": (
        "ui",
        {**CANARY, "linearConfiguration": {"stepPercent": 10.0}},
        "linearConfiguration",
    ),
    "pause-at-test-traffic-shift": (
        "ui",
        {**BG, "lifecycleHooks": [{**PAUSE, "lifecycleStages": ["TEST_TRAFFIC_SHIFT"]}]},
        "TEST_TRAFFIC_SHIFT",
    ),
    "pause-at-production-traffic-shift": (
        "ui",
        {**BG, "lifecycleHooks": [{**PAUSE, "lifecycleStages": ["POST_SCALE_UP", "PRODUCTION_TRAFFIC_SHIFT"]}]},
        "PRODUCTION_TRAFFIC_SHIFT",
    ),
    "pause-with-target-arn": (
        "ui",
        {
            **BG,
            "lifecycleHooks": [{**PAUSE, "hookTargetArn": lambda_arn("succeed"), "lifecycleStages": ["POST_SCALE_UP"]}],
        },
        "hookTargetArn",
    ),
    "pause-timeout-over-14-days": (
        "ui",
        {
            **BG,
            "lifecycleHooks": [
                {**PAUSE, "lifecycleStages": ["POST_SCALE_UP"], "timeoutConfiguration": {"timeoutInMinutes": 20161}}
            ],
        },
        "timeoutInMinutes",
    ),
    "lambda-without-target-arn": (
        "ui",
        {**BG, "lifecycleHooks": [{"targetType": "AWS_LAMBDA", "roleArn": ROLE, "lifecycleStages": ["POST_SCALE_UP"]}]},
        "hookTargetArn",
    ),
    "rolling-hook-at-a-traffic-stage": (
        "orders",
        {"strategy": "ROLLING", "lifecycleHooks": [{**PAUSE, "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]},
        "ROLLING",
    ),
    "blue-green-on-a-plain-load-balancer": ("orders", {**BG}, "advancedConfiguration.alternateTargetGroupArn"),
    "canary-on-a-plain-load-balancer": (
        "orders",
        {**CANARY, "canaryConfiguration": {"canaryPercent": 10.0}},
        "advancedConfiguration",
    ),
    "canary-on-headless": ("notifications", {**CANARY, "canaryConfiguration": {"canaryPercent": 10.0}}, "CANARY"),
    "linear-on-headless": ("notifications", {**LINEAR, "linearConfiguration": {"stepPercent": 10.0}}, "LINEAR"),
    "unknown-strategy": ("ui", {"strategy": "RED_BLACK"}, "strategy"),
}


def _error(call: Callable[[], Any]) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_deployment_configuration(case: str, ecs_strict: ECSClient) -> None:
    service, config, field = BAD_CONFIGS[case]
    before = ecs_strict.describe_services(cluster=CLUSTER, services=[service])["services"][0]

    code, message = _error(
        lambda: ecs_strict.update_service(
            cluster=CLUSTER, service=service, taskDefinition=f"{service}:1", deploymentConfiguration=config
        )
    )

    assert code == "InvalidParameterException"
    assert field in message
    after = ecs_strict.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    assert after["taskDefinition"] == before["taskDefinition"]  # nothing changed, nothing deployed


def _arns(n: int) -> list[str]:
    return [f"{UNKNOWN_DEPLOYMENT}{i}" for i in range(n)]


def _seeded(ecs: ECSClient) -> str:
    briefs = ecs.list_service_deployments(cluster=CLUSTER, service="ui", status=["SUCCESSFUL"])["serviceDeployments"]
    return str(briefs[0]["serviceDeploymentArn"])


# name -> (call given (client, in-progress deployment ARN), expected code, text in the message)
BAD_CALLS: dict[str, tuple[Callable[[Any, str], Any], str, str]] = {
    "describe-21-deployments": (
        lambda ecs, arn: ecs.describe_service_deployments(serviceDeploymentArns=_arns(21)),
        "InvalidParameterException",
        "serviceDeploymentArns",
    ),
    "describe-21-revisions": (
        lambda ecs, arn: ecs.describe_service_revisions(serviceRevisionArns=_arns(21)),
        "InvalidParameterException",
        "serviceRevisionArns",
    ),
    "continue-hook-not-awaiting": (
        lambda ecs, arn: ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId="ecs-pause-nope"),
        "InvalidParameterException",
        "hookId",
    ),
    "continue-finished-deployment": (
        lambda ecs, arn: ecs.continue_service_deployment(serviceDeploymentArn=_seeded(ecs), hookId="ecs-pause-nope"),
        "InvalidParameterException",
        "hookId",
    ),
    "continue-unknown-deployment": (
        lambda ecs, arn: ecs.continue_service_deployment(serviceDeploymentArn=UNKNOWN_DEPLOYMENT, hookId="x"),
        "ServiceDeploymentNotFoundException",
        "not found",
    ),
    "stop-unknown-deployment": (
        lambda ecs, arn: ecs.stop_service_deployment(serviceDeploymentArn=UNKNOWN_DEPLOYMENT),
        "ServiceDeploymentNotFoundException",
        "not found",
    ),
    "stop-finished-deployment": (
        lambda ecs, arn: ecs.stop_service_deployment(serviceDeploymentArn=_seeded(ecs), stopType="ROLLBACK"),
        "ConflictException",
        "SUCCESSFUL",
    ),
    "stop-abort": (
        lambda ecs, arn: ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ABORT"),
        "InvalidParameterException",
        "stopType",
    ),
    "unknown-service-update": (
        lambda ecs, arn: ecs.update_service(cluster=CLUSTER, service="payments", forceNewDeployment=True),
        "ServiceNotFoundException",
        "payments",
    ),
    "unknown-service-list-deployments": (
        lambda ecs, arn: ecs.list_service_deployments(cluster=CLUSTER, service="payments"),
        "ServiceNotFoundException",
        "payments",
    ),
    "unknown-cluster": (lambda ecs, arn: ecs.list_services(cluster="nope"), "ClusterNotFoundException", "nope"),
    "unknown-cluster-describe-services": (
        lambda ecs, arn: ecs.describe_services(cluster="nope", services=["ui"]),
        "ClusterNotFoundException",
        "nope",
    ),
    "unknown-task-definition": (
        lambda ecs, arn: ecs.update_service(cluster=CLUSTER, service="ui", taskDefinition="ui:99"),
        "ClientException",
        "taskDefinition",
    ),
    "max-results-over-100": (
        lambda ecs, arn: ecs.list_service_deployments(cluster=CLUSTER, service="ui", maxResults=101),
        "InvalidParameterException",
        "maxResults",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_calls(case: str, ecs_strict: ECSClient) -> None:
    call, expected, text = BAD_CALLS[case]
    arn = deploy(ecs_strict, "ui")

    code, message = _error(lambda: call(ecs_strict, arn))

    assert (code, text in message) == (expected, True), message


def _raw(url: str, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target:
        headers["X-Amz-Target"] = f"AmazonEC2ContainerServiceV20141113.{target}"
    request = urllib.request.Request(url + "/", data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("target", "body", "code", "text"),
    [
        ("ListServiceDeployments", {"cluster": CLUSTER}, "InvalidParameterException", "service"),
        ("DescribeServices", {"cluster": CLUSTER, "services": "ui"}, "InvalidParameterException", "services"),
        ("UpdateService", {"service": "ui", "surprise": 1}, "InvalidParameterException", "surprise"),
        (
            "UpdateService",
            {
                "service": "ui",
                "deploymentConfiguration": {
                    "lifecycleHooks": [{"targetType": "WEBHOOK", "lifecycleStages": ["POST_SCALE_UP"]}]
                },
            },
            "InvalidParameterException",
            "targetType",
        ),
        (
            "ContinueServiceDeployment",
            {"serviceDeploymentArn": "x", "hookId": "y", "action": "SKIP"},
            "InvalidParameterException",
            "action",
        ),
        ("DeleteCluster", {}, "ClientException", "DeleteCluster"),
        (None, {}, "ClientException", "X-Amz-Target"),
    ],
)
def test_raw_protocol_errors(control: Control, target: str | None, body: dict[str, Any], code: str, text: str) -> None:
    status, answer = _raw(control.url, target, json.dumps(body).encode())
    assert (status, answer["__type"]) == (400, code)
    assert text in answer["message"]


def test_invalid_json_body(control: Control) -> None:
    status, answer = _raw(control.url, "ListServices", b"{not json")
    assert (status, answer["__type"]) == (400, "SerializationException")
