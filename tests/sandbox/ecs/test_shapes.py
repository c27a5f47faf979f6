"""Every operation's response parses into its botocore output shape, and carries what the bot reads.

boto3 silently drops keys it does not know, so the raw JSON is also checked member by member against the model.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.session

from .helpers import CLUSTER, Control, deploy

MODEL = botocore.session.get_session().get_service_model("ecs")
SCALARS: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "timestamp": (int, float),
}


def check(value: Any, shape: Any, path: str) -> None:
    kind = shape.type_name
    if kind == "structure" and shape.metadata.get("document"):
        return
    if kind == "structure":
        assert isinstance(value, dict), path
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: keys not in {shape.name}: {unknown}"
        for name, member in shape.members.items():
            if name in value:
                check(value[name], member, f"{path}.{name}")
    elif kind == "list":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            check(item, shape.member, f"{path}[{i}]")
    elif kind == "map":
        assert isinstance(value, dict), path
        for key, item in value.items():
            check(item, shape.value, f"{path}.{key}")
    else:
        assert isinstance(value, SCALARS[kind]) and (kind == "boolean" or not isinstance(value, bool)), (
            f"{path}: {value!r} is not {kind}"
        )
        if kind == "string" and shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in enum"


def test_every_operation_matches_its_output_shape(control: Control) -> None:
    ecs = boto3.client(
        "ecs", region_name="us-east-1", endpoint_url=control.url, aws_access_key_id="test", aws_secret_access_key="test"
    )
    seen: set[str] = set()

    def raw_check(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
        assert response_dict["status_code"] == 200, response_dict["body"]
        check(json.loads(response_dict["body"]), operation_model.output_shape, operation_model.name)
        seen.add(operation_model.name)

    ecs.meta.events.register("before-parse.ecs.*", raw_check)

    cluster = ecs.create_cluster(clusterName="scratch")["cluster"]
    assert cluster["clusterName"] == "scratch" and cluster["status"] == "ACTIVE"
    clusters = ecs.describe_clusters(clusters=[CLUSTER, "missing"])
    assert clusters["clusters"][0]["clusterArn"].endswith(f":cluster/{CLUSTER}")
    assert clusters["failures"][0]["reason"] == "MISSING"

    td = ecs.describe_task_definition(taskDefinition="ui:2")["taskDefinition"]
    assert td["containerDefinitions"][0]["image"] == "public.ecr.aws/aws-containers/retail-store-sample-ui:1.2.1"
    registered = ecs.register_task_definition(
        family="ui",
        containerDefinitions=[
            {**td["containerDefinitions"][0], "image": td["containerDefinitions"][0]["image"].replace("1.2.1", "1.3.0")}
        ],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
    )["taskDefinition"]
    assert (registered["family"], registered["revision"], registered["status"]) == ("ui", 3, "ACTIVE")
    listed = ecs.list_task_definitions(familyPrefix="ui", sort="DESC")["taskDefinitionArns"]
    assert listed[0].endswith("task-definition/ui:3") and len(listed) == 3

    services = ecs.describe_services(cluster=CLUSTER, services=["ui", "catalog", "orders", "notifications"])
    ui, catalog, orders, notifications = services["services"]
    assert ui["deploymentConfiguration"]["strategy"] == "BLUE_GREEN"
    assert ui["loadBalancers"][0]["advancedConfiguration"]["testListenerRule"]
    assert catalog["deploymentConfiguration"]["canaryConfiguration"] == {
        "canaryPercent": 10.0,
        "canaryBakeTimeInMinutes": 5,
    }
    assert orders["deploymentConfiguration"]["strategy"] == "ROLLING"
    assert notifications["loadBalancers"] == [] and notifications["desiredCount"] == 2
    assert ecs.list_services(cluster=CLUSTER, maxResults=2)["nextToken"]

    created = ecs.create_service(cluster="scratch", serviceName="api", taskDefinition="ui:3", desiredCount=1)
    assert created["service"]["serviceName"] == "api"
    updated = ecs.update_service(cluster=CLUSTER, service="orders", desiredCount=4)["service"]
    assert updated["desiredCount"] == 4

    arn = deploy(ecs, "catalog", lifecycleHooks=[{"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]}])
    control.advance(3)
    briefs = ecs.list_service_deployments(cluster=CLUSTER, service="catalog", maxResults=1)
    assert briefs["serviceDeployments"][0]["serviceDeploymentArn"] == arn and briefs["nextToken"]
    described = ecs.describe_service_deployments(serviceDeploymentArns=[arn, arn + "x"])
    d = described["serviceDeployments"][0]
    assert described["failures"][0]["arn"] == arn + "x"
    for field in (
        "status",
        "lifecycleStage",
        "targetServiceRevision",
        "sourceServiceRevisions",
        "lifecycleHookDetails",
        "deploymentConfiguration",
        "createdAt",
        "startedAt",
        "updatedAt",
        "deploymentCircuitBreaker",
        "alarms",
    ):
        assert field in d, field
    hook = d["lifecycleHookDetails"][0]
    assert {"hookId", "targetType", "status", "expiresAt", "timeoutAction"} <= set(hook)
    revisions = ecs.describe_service_revisions(serviceRevisionArns=[d["targetServiceRevision"]["arn"]])
    assert revisions["serviceRevisions"][0]["taskDefinition"].endswith("catalog:1")
    assert (
        ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook["hookId"])["serviceDeploymentArn"] == arn
    )
    assert ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")["serviceDeploymentArn"] == arn
    later = ecs.list_service_deployments(
        cluster=CLUSTER, service="catalog", status=["ROLLBACK_REQUESTED"], createdAt={"after": d["createdAt"]}
    )["serviceDeployments"]
    assert [b["serviceDeploymentArn"] for b in later] == [arn]

    expected = {
        op
        for op in MODEL.operation_names
        if op
        in {
            "CreateCluster",
            "DescribeClusters",
            "RegisterTaskDefinition",
            "DescribeTaskDefinition",
            "ListTaskDefinitions",
            "CreateService",
            "DescribeServices",
            "UpdateService",
            "ListServices",
            "ListServiceDeployments",
            "DescribeServiceDeployments",
            "DescribeServiceRevisions",
            "ContinueServiceDeployment",
            "StopServiceDeployment",
        }
    }
    assert seen == expected and len(seen) == 14
