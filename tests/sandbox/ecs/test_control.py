"""Control API: faults, throttling, the call log, speed; scale; and the CLI entry point."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mypy_boto3_ecs import ECSClient
from mypy_boto3_ecs.type_defs import DeploymentConfigurationTypeDef, LoadBalancerTypeDef

from .helpers import CLUSTER, Control


def _code(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        ("ThrottlingException", 400, "Rate exceeded"),
        ("ServerException", 500, "Injected fault"),
    ],
)
def test_fault_injection(ecs_strict: ECSClient, control: Control, code: str, status: int, message: str) -> None:
    control.post("fault", {"operation": "DescribeServices", "code": code, "rate": 1})
    with pytest.raises(ClientError) as caught:
        ecs_strict.describe_services(cluster=CLUSTER, services=["ui"])
    error = caught.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == (code, status)
    assert message in error["Error"]["Message"]
    assert ecs_strict.list_services(cluster=CLUSTER)["serviceArns"]  # other operations unaffected
    control.post("fault", {"operation": "DescribeServices", "code": code, "rate": 0})
    assert ecs_strict.describe_services(cluster=CLUSTER, services=["ui"])["services"]


def test_a_fault_after_the_call_does_it_and_answers_500(ecs_strict: ECSClient, control: Control) -> None:
    control.post("fault", {"operation": "UpdateService", "code": "ServerException", "rate": 1, "after": True})
    before = len(ecs_strict.list_service_deployments(cluster=CLUSTER, service="ui")["serviceDeployments"])
    with pytest.raises(ClientError) as caught:
        ecs_strict.update_service(cluster=CLUSTER, service="ui", forceNewDeployment=True)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    after = ecs_strict.list_service_deployments(cluster=CLUSTER, service="ui")["serviceDeployments"]
    assert len(after) == before + 1  # it landed: a client that resends starts a second deployment
    assert control.get("state")["faults"] == {}  # after-faults are not the ordinary kind


def test_latency_delays_every_call(ecs_strict: ECSClient, control: Control) -> None:
    control.post("latency", {"min": 0.2, "max": 0.2})
    started = time.monotonic()
    ecs_strict.list_services(cluster=CLUSTER)
    assert time.monotonic() - started >= 0.2
    control.post("latency", {"min": 0, "max": 0})


def test_latency_of_named_operations_delays_those(ecs_strict: ECSClient, control: Control) -> None:
    answer = control.post("latency", {"min": 0.2, "max": 0.2, "operations": ["ListServices"]})
    assert answer["operations"] == ["ListServices"]
    started = time.monotonic()
    ecs_strict.list_services(cluster=CLUSTER)
    assert time.monotonic() - started >= 0.2
    control.post("latency", {"min": 0, "max": 0})


def test_latency_for_named_callers_delays_only_their_calls(ecs_strict: ECSClient, control: Control) -> None:
    slow = boto3.client(
        "ecs",
        region_name="us-east-1",
        endpoint_url=control.url,
        aws_access_key_id="replica-a",
        aws_secret_access_key="replica-a",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    answer = control.post("latency", {"min": 2, "max": 2, "operations": ["ListServices"], "callers": ["replica-a"]})
    assert answer["callers"] == ["replica-a"]
    slow.list_services(cluster=CLUSTER)
    ecs_strict.list_services(cluster=CLUSTER)  # access key "test"
    control.post("latency", {"min": 0, "max": 0})
    calls = control.get("calls?operation=ListServices")["calls"]
    in_flight = {c["caller"]: c["answered"] - c["received"] for c in calls}
    assert in_flight["replica-a"] >= 2
    assert in_flight["test"] < 2  # not slowed: another caller's


def test_throttling_uses_the_shared_deployment_bucket(ecs_strict: ECSClient, control: Control) -> None:
    control.post("throttling", {"enabled": True})

    def call(i: int) -> str:
        try:
            if i % 2:
                ecs_strict.list_service_deployments(cluster=CLUSTER, service="ui")
            else:
                ecs_strict.describe_service_deployments(serviceDeploymentArns=["arn:x"])
        except ClientError as error:
            return str(error.response["Error"]["Code"])
        return "ok"

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = Counter(pool.map(call, range(150)))
    refill = 20 * (time.monotonic() - started)
    assert results["ThrottlingException"] > 0
    assert 50 <= results["ok"] <= 50 + refill + 1  # burst 50, sustained 20/s, shared by both operations
    assert ecs_strict.describe_services(cluster=CLUSTER, services=["ui"])["services"]  # its own bucket
    control.post("throttling", {"enabled": False})
    assert ecs_strict.list_service_deployments(cluster=CLUSTER, service="ui")["serviceDeployments"]


def test_call_log_records_operations_parameters_and_errors(ecs_strict: ECSClient, control: Control) -> None:
    ecs_strict.list_services(cluster=CLUSTER)
    _code(lambda: ecs_strict.list_services(cluster="nope"))
    calls = control.get("calls?operation=ListServices")["calls"]
    assert [(c["parameters"]["cluster"], c["error"]) for c in calls] == [
        (CLUSTER, None),
        ("nope", "ClusterNotFoundException"),
    ]
    assert all(isinstance(c["time"], float) for c in calls)
    assert {c["operation"] for c in control.get("calls")["calls"]} == {"ListServices"}


def test_speed_and_state(control: Control) -> None:
    before = control.get("state")
    assert before["speed"] == 0 and before["deployments"] == {"SUCCESSFUL": 4}
    control.post("speed", {"speed": 600})
    time.sleep(0.05)
    control.post("speed", {"speed": 0})
    assert control.get("state")["now"] - before["now"] >= 25


def test_control_rejects_bad_requests(control: Control) -> None:
    import urllib.error

    bad: list[tuple[str, dict[str, Any]]] = [
        ("alarm", {"name": "a", "state": "RED"}),
        ("advance", {"seconds": -1}),
        ("fault", {"operation": "X", "code": "AccessDeniedException", "rate": 1}),
        ("fault", {"operation": "X", "code": "ThrottlingException", "rate": 1, "after": True}),
        ("latency", {"min": 2, "max": 1}),
        ("latency", {"min": 0, "max": 1, "operations": ["NoSuchOperation"]}),
        ("latency", {"min": 0, "max": 1, "operations": "UpdateService"}),
        ("latency", {"min": 0, "max": 1, "callers": "replica-a"}),
        ("lambda", {"name": "f", "url": "ftp://x"}),
        ("nothing", {}),
    ]
    for path, body in bad:
        with pytest.raises(urllib.error.HTTPError) as caught:
            control.post(path, body)
        assert caught.value.code in (400, 404)


def test_thousand_concurrent_deployments_progress(ecs: ECSClient, control: Control) -> None:
    started = time.monotonic()
    ecs.register_task_definition(family="load", containerDefinitions=[{"name": "load", "image": "load:1"}])
    ecs.create_cluster(clusterName="load")
    config: DeploymentConfigurationTypeDef = {
        "strategy": "CANARY",
        "bakeTimeInMinutes": 1,
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1},
    }
    lb: list[LoadBalancerTypeDef] = [
        {
            "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/load/1",
            "containerName": "load",
            "containerPort": 80,
            "advancedConfiguration": {
                "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/load/2",
                "productionListenerRule": "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/l/1",
                "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers",
            },
        }
    ]

    def create(i: int) -> None:
        ecs.create_service(
            cluster="load",
            serviceName=f"svc-{i}",
            taskDefinition="load",
            desiredCount=2,
            loadBalancers=lb,
            deploymentConfiguration=config,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(1000)))
    assert control.get("state")["deployments"].get("PENDING") == 1000
    for _ in range(12):
        control.advance(30)
    assert control.get("state")["deployments"] == {"SUCCESSFUL": 1004}
    elapsed = time.monotonic() - started
    print(f"1,000 deployments created and completed in {elapsed:.2f}s")
    assert elapsed < 20


def test_serve_forever_prints_its_address() -> None:
    code = "from sandbox.ecs import serve_forever; serve_forever('127.0.0.1', 0, 2.5)"
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("ECS sandbox on http://127.0.0.1:") and line.rstrip().endswith("(speed 2.5)")
    finally:
        process.terminate()
        process.wait(timeout=5)


def test_forget_drops_one_deployment_record(ecs_strict: ECSClient, control: Control) -> None:
    from .helpers import deploy

    arn = deploy(ecs_strict, "orders")
    assert control.post("forget", {"deployment": arn}) == {"forgotten": arn}
    answer = ecs_strict.describe_service_deployments(serviceDeploymentArns=[arn])
    assert answer["serviceDeployments"] == [] and answer["failures"][0]["reason"] == "MISSING"
    listed = ecs_strict.list_service_deployments(cluster=CLUSTER, service="orders")["serviceDeployments"]
    assert arn not in {b["serviceDeploymentArn"] for b in listed}
    assert _code(lambda: ecs_strict.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")) == (
        "ServiceDeploymentNotFoundException"
    )


def test_delete_service_takes_its_deployments_with_it(ecs_strict: ECSClient, control: Control) -> None:
    briefs = ecs_strict.list_service_deployments(cluster=CLUSTER, service="notifications")["serviceDeployments"]
    answer = control.post("delete-service", {"service": "notifications", "cluster": CLUSTER})
    assert answer["deletedDeployments"] == [b["serviceDeploymentArn"] for b in briefs]
    described = ecs_strict.describe_service_deployments(serviceDeploymentArns=answer["deletedDeployments"])
    assert {f["reason"] for f in described["failures"]} == {"MISSING"}
    assert ecs_strict.describe_services(cluster=CLUSTER, services=["notifications"])["failures"][0]["reason"] == (
        "MISSING"
    )
    assert _code(lambda: ecs_strict.list_service_deployments(cluster=CLUSTER, service="notifications")) == (
        "ServiceNotFoundException"
    )
