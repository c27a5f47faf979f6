"""The seeded world (also what `POST /_sandbox/reset` restores).

Cluster `unicorn-watch` in us-east-1 / 123456789012 with four services, each running revision 2 of a
task-definition family named like the service, and each with one SUCCESSFUL service deployment (1 → 2). The
architecture of the talk: one ALB (`unicorn-watch`) whose HTTP listener routes by path, with a header-based test
rule per blue/green service on the same listener (`LISTENER_RULES`; ECS sees only the rules' ARNs):
    ui             ALB, path /frontend/* (test: + header x-amzn-ecs-blue-green-test), blue + green target groups,
                   BLUE_GREEN, bake 5, Lambda hook `succeed` at POST_TEST_TRAFFIC_SHIFT
    catalog        ALB, path /catalog/* (test: + the header), blue + green target groups, and Service Connect
                   (`catalog` in namespace unicorn-watch), CANARY 10 % / 5 min, bake 5, alarms catalog-5xx and
                   catalog-latency-p99
    orders         its own target group on the ALB, no green target group and no listener rule of its own
                   (no advancedConfiguration): rolling-only, ECS refuses BLUE_GREEN, CANARY and LINEAR for it
    notifications  headless (no load balancer, no Service Connect, no VPC Lattice), BLUE_GREEN, bake 2
All have the circuit breaker enabled with rollback.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .model import (
    ACCOUNT,
    REGION,
    Cluster,
    RevisionState,
    Service,
    ServiceDeployment,
    Store,
    TaskDefinition,
    lambda_arn,
)

CLUSTER = "unicorn-watch"
ELB = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}"
IAM = f"arn:aws:iam::{ACCOUNT}:role"
RETAIL = "public.ecr.aws/aws-containers/retail-store-sample-"
SERVICES: dict[str, dict[str, Any]] = {
    "ui": {"images": (RETAIL + "ui:1.2.0", RETAIL + "ui:1.2.1"), "desired": 3, "lb": "advanced"},
    "catalog": {
        "images": (RETAIL + "catalog:1.2.0", RETAIL + "catalog:1.2.1"),
        "desired": 3,
        "lb": "advanced",
        "connect": True,
    },
    "orders": {"images": (RETAIL + "orders:1.2.0", RETAIL + "orders:1.2.1"), "desired": 3, "lb": "simple"},
    "notifications": {
        "images": (
            "public.ecr.aws/unicorn-watch/notifications:3.4.0",
            "public.ecr.aws/unicorn-watch/notifications:3.4.1",
        ),
        "desired": 2,
    },
}
BREAKER = {"enable": True, "rollback": True}
CONFIGS: dict[str, dict[str, Any]] = {
    "ui": {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 5,
        "lifecycleHooks": [
            {
                "targetType": "AWS_LAMBDA",
                "hookTargetArn": lambda_arn("succeed"),
                "roleArn": f"{IAM}/ecsLifecycleHookInvokeRole",
                "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
            }
        ],
    },
    "catalog": {
        "strategy": "CANARY",
        "bakeTimeInMinutes": 5,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
        "alarms": {"alarmNames": ["catalog-5xx", "catalog-latency-p99"], "enable": True, "rollback": True},
    },
    "orders": {"strategy": "ROLLING"},
    "notifications": {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 2},
}


def _task_body(name: str, image: str) -> dict[str, Any]:
    return {
        "family": name,
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "executionRoleArn": f"{IAM}/ecsTaskExecutionRole",
        "containerDefinitions": [
            {
                "name": name,
                "image": image,
                "essential": True,
                "cpu": 256,
                "memory": 512,
                "portMappings": [{"containerPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"}],
            }
        ],
    }


def _load_balancers(name: str, kind: str | None) -> list[dict[str, Any]]:
    if kind is None:
        return []
    lb: dict[str, Any] = {
        "targetGroupArn": f"{ELB}:targetgroup/{name}-blue/{_hex(name, 16)}",
        "containerName": name,
        "containerPort": 8080,
    }
    if kind == "advanced":
        # Both rules on the ALB's one HTTP listener: the test rule differs only by its header condition.
        listener = f"{ELB}:listener-rule/app/{CLUSTER}/{_hex(CLUSTER, 16)}/{_hex('http', 16)}"
        lb["advancedConfiguration"] = {
            "alternateTargetGroupArn": f"{ELB}:targetgroup/{name}-green/{_hex(name + 'g', 16)}",
            "productionListenerRule": f"{listener}/{_hex(name + 'p', 16)}",
            "testListenerRule": f"{listener}/{_hex(name + 't', 16)}",
            "roleArn": f"{IAM}/ecsInfrastructureRoleForLoadBalancers",
        }
    return [lb]


# The ALB's listener rules as the talk draws them (ELB objects: not part of any ECS answer).
TEST_HEADER = "x-amzn-ecs-blue-green-test"
LISTENER_RULES: dict[str, dict[str, str]] = {
    "ui": {"production": "path-pattern /frontend/*", "test": f"path-pattern /frontend/* and header {TEST_HEADER}"},
    "catalog": {"production": "path-pattern /catalog/*", "test": f"path-pattern /catalog/* and header {TEST_HEADER}"},
    "orders": {"production": "path-pattern /orders/* (forward to orders-blue only)"},
}


def _hex(text: str, length: int) -> str:
    # Stable, realistic-looking resource ids so ARNs are the same after every reset.
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _connect(name: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "namespace": CLUSTER,
        "services": [{"portName": "http", "discoveryName": name, "clientAliases": [{"port": 80, "dnsName": name}]}],
    }


def populate(store: Store, now: float) -> None:
    """Fill an empty store with the seeded cluster, task definitions, services and past deployments."""
    cluster = Cluster(name=CLUSTER, created_at=now - 30 * 86400, namespace=CLUSTER)
    store.clusters[CLUSTER] = cluster
    for name, spec in SERVICES.items():
        old, new = (
            store.register(name, _task_body(name, image), now - (10 - i) * 86400)
            for i, image in enumerate(spec["images"])
        )
        config = {
            "deploymentCircuitBreaker": dict(BREAKER),
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
            **CONFIGS[name],
        }
        service = Service(
            name=name,
            cluster=cluster,
            task_definition=old,
            desired_count=spec["desired"],
            load_balancers=_load_balancers(name, spec.get("lb")),
            service_connect=_connect(name) if spec.get("connect") else None,
            deployment_configuration=config,
            created_at=now - 20 * 86400,
            network_configuration={
                "awsvpcConfiguration": {
                    "subnets": ["subnet-0a1b2c3d4e5f60001", "subnet-0a1b2c3d4e5f60002"],
                    "securityGroups": [f"sg-0{_hex(name, 16)}"],
                    "assignPublicIp": "DISABLED",
                }
            },
        )
        store.services[(CLUSTER, name)] = service
        _past_deployment(store, service, old, new, now - 86400)


def _past_deployment(store: Store, service: Service, old: TaskDefinition, new: TaskDefinition, at: float) -> None:
    source_rev = store.new_revision(service, at - 9 * 86400)
    service.task_definition = new
    target_rev = store.new_revision(service, at)
    weighted = service.deployment_configuration["strategy"] != "ROLLING" and not service.headless
    target = RevisionState(
        target_rev,
        service.desired_count,
        service.desired_count,
        0,
        100.0 if weighted else 0.0,
        100.0 if weighted else 0.0,
    )
    deployment = ServiceDeployment(
        arn=store.new_deployment_arn(service),
        service=service,
        created_at=at,
        config=service.deployment_configuration,
        target=target,
        sources=[RevisionState(source_rev)],
        desired=service.desired_count,
        status="SUCCESSFUL",
        status_reason="deployment completed successfully",
        lifecycle_stage="CLEAN_UP",
        started_at=at + 2,
        updated_at=at + 900,
        finished_at=at + 900,
        seq=store.next_seq(),
        breaker_status="MONITORING_COMPLETE",
    )
    if service.deployment_configuration.get("alarms"):
        deployment.alarm_status = "MONITORING_COMPLETE"
    store.deployments[deployment.arn] = deployment
    service.deployments.append(deployment)
    service.active_revisions = [target_rev]
