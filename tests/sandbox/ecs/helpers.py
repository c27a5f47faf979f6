"""Helpers shared by the ECS sandbox tests: the control API client and a clock-stepping observer."""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, cast

from mypy_boto3_ecs import ECSClient
from mypy_boto3_ecs.literals import DeploymentLifecycleHookActionType
from mypy_boto3_ecs.type_defs import DeploymentConfigurationTypeDef, ServiceDeploymentTypeDef

from tests.support import Control

CLUSTER = "unicorn-watch"
TERMINAL = {"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"}
ROLE = "arn:aws:iam::123456789012:role/hook"


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def describe(ecs: ECSClient, arn: str) -> ServiceDeploymentTypeDef:
    return ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]


def snapshot(d: ServiceDeploymentTypeDef) -> tuple[Any, ...]:
    """(status, lifecycleStage, target production weight, hook statuses)."""
    weight = d["targetServiceRevision"].get("requestedProductionTrafficWeight")
    hooks = tuple(f"{h['targetType']}:{h['status']}" for h in d.get("lifecycleHookDetails", []))
    return (d["status"], d.get("lifecycleStage"), weight, hooks)


def latest_deployment(ecs: ECSClient, service: str) -> str:
    """The newest PENDING/IN_PROGRESS deployment of a service (how the bot finds it)."""
    briefs = ecs.list_service_deployments(cluster=CLUSTER, service=service, status=["PENDING", "IN_PROGRESS"])[
        "serviceDeployments"
    ]
    return str(briefs[0]["serviceDeploymentArn"])


def drive(
    ecs: ECSClient,
    control: Control,
    arn: str,
    act: Callable[[ServiceDeploymentTypeDef], None] | None = None,
    step: float = 1.0,
    limit: int = 3000,
    until: Callable[[ServiceDeploymentTypeDef], bool] | None = None,
    jump: bool = True,
    pace: float = 0.0,
) -> tuple[list[tuple[Any, ...]], ServiceDeploymentTypeDef]:
    """Step the clock, recording each distinct snapshot, until the deployment ends (or `until` holds).

    `jump` skips straight to the deployment's next wake-up, except while a Lambda hook is running: a function
    called over HTTP answers in real time, so then the clock moves by `step` after `pace` real seconds.
    """
    seen: list[tuple[Any, ...]] = []
    for _ in range(limit):
        d = describe(ecs, arn)
        snap = snapshot(d)
        if not seen or seen[-1] != snap:
            seen.append(snap)
        if d["status"] in TERMINAL or (until is not None and until(d)):
            return seen, d
        if act is not None:
            act(d)
            d = describe(ecs, arn)
            snap = snapshot(d)
            if seen[-1] != snap:
                seen.append(snap)
        lambda_running = "AWS_LAMBDA:IN_PROGRESS" in seen[-1][3]
        if lambda_running and pace:
            time.sleep(pace)
        control.advance(_next_step(control, arn, step) if jump and not lambda_running else step)
    raise AssertionError(f"deployment did not finish; last {seen[-1]}")


def _next_step(control: Control, arn: str, step: float) -> float:
    # Nothing changes between wake-ups, so jumping to the next one observes the same sequence, faster.
    state = control.get("state?" + urllib.parse.urlencode({"deployment": arn}))
    if state["nextWakeAt"] is None:
        return step
    gap: float = state["nextWakeAt"] - state["now"]
    return max(step, gap)


def continue_pauses(
    ecs: ECSClient, action: DeploymentLifecycleHookActionType = "CONTINUE", hook_ids: list[str] | None = None
) -> Callable[[ServiceDeploymentTypeDef], None]:
    """An `act` for drive(): answer every PAUSE hook awaiting action."""

    def act(d: ServiceDeploymentTypeDef) -> None:
        for hook in d.get("lifecycleHookDetails", []):
            if hook["status"] == "AWAITING_ACTION":
                if hook_ids is not None:
                    hook_ids.append(hook["hookId"])
                ecs.continue_service_deployment(
                    serviceDeploymentArn=d["serviceDeploymentArn"], hookId=hook["hookId"], action=action
                )

    return act


def deploy(ecs: ECSClient, service: str, task_definition: str | None = None, **config: Any) -> str:
    """UpdateService with the service's config overridden by `config`; returns the new deployment's ARN."""
    current = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]
    merged = {**current["deploymentConfiguration"], **config}
    for key in ("canaryConfiguration", "linearConfiguration"):
        if key in merged and merged.get("strategy") != key.replace("Configuration", "").upper():
            merged.pop(key)
    ecs.update_service(
        cluster=CLUSTER,
        service=service,
        # The service's own configuration with each test's overrides: only ECS (here the sandbox) checks it.
        deploymentConfiguration=cast("DeploymentConfigurationTypeDef", merged),
        taskDefinition=task_definition or f"{service}:1",
    )
    return latest_deployment(ecs, service)


__all__ = ["CLUSTER", "ROLE", "TERMINAL", "Control", "describe", "drive", "lambda_arn", "latest_deployment", "snapshot"]
