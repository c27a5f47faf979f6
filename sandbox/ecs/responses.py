"""Model objects to ECS API response structures (keys and types as in botocore's ECS model)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from .model import ACCOUNT, Cluster, RevisionState, Service, ServiceDeployment, ServiceRevision, Store
from .protocol import service_model
from .simulator import breaker_threshold


def _compact(body: dict[str, Any]) -> dict[str, Any]:
    # AWS omits absent members rather than sending null.
    return {k: v for k, v in body.items() if v is not None}


def cluster(c: Cluster, store: Store) -> dict[str, Any]:
    """A Cluster structure."""
    services = [s for (name, _), s in store.services.items() if name == c.name]
    running = sum(s.desired_count for s in services)
    return _compact(
        {
            "clusterArn": c.arn,
            "clusterName": c.name,
            "status": "ACTIVE",
            "registeredContainerInstancesCount": 0,
            "runningTasksCount": running,
            "pendingTasksCount": 0,
            "activeServicesCount": len(services),
            "statistics": [],
            "tags": [],
            "settings": [{"name": "containerInsights", "value": "enabled"}],
            "capacityProviders": ["FARGATE", "FARGATE_SPOT"],
            "defaultCapacityProviderStrategy": [],
            "serviceConnectDefaults": {"namespace": c.namespace} if c.namespace else None,
        }
    )


def task_definition(td: Any) -> dict[str, Any]:
    """A TaskDefinition structure (registration body plus what ECS adds)."""
    members = service_model().shape_for("TaskDefinition").members
    body = {k: v for k, v in td.body.items() if k in members}
    return {
        **body,
        "taskDefinitionArn": td.arn,
        "family": td.family,
        "revision": td.revision,
        "status": td.status,
        "registeredAt": td.registered_at,
        "compatibilities": ["EC2", "FARGATE"],
        "requiresAttributes": [],
        "registeredBy": f"arn:aws:iam::{ACCOUNT}:role/deploybot",
    }


def _counts(state: RevisionState) -> dict[str, Any]:
    return {"requestedTaskCount": state.requested, "runningTaskCount": state.running, "pendingTaskCount": state.pending}


def revision_summary(state: RevisionState, weighted: bool) -> dict[str, Any]:
    """A ServiceRevisionSummary; ROLLING deployments carry no traffic weights."""
    body = {"arn": state.revision.arn, **_counts(state)}
    if weighted:
        body["requestedTestTrafficWeight"] = state.test_weight
        body["requestedProductionTrafficWeight"] = state.prod_weight
    return body


def deployment(
    d: ServiceDeployment, switches: Mapping[str, str] | None = None, now: float | None = None
) -> dict[str, Any]:
    """A ServiceDeployment structure (`switches`: the undocumented choices that shape it, switches.py)."""
    chosen = switches or {}
    weighted = d.strategy != "ROLLING"
    stage = None if not weighted and chosen.get("rolling_stages") == "absent" else d.lifecycle_stage
    runs = [*d.past_hooks, *d.hooks] if chosen.get("hook_details_scope") == "all" else d.hooks
    moving = chosen.get("updated_at") == "every_describe" and not d.terminal and now is not None
    alarms = d.config.get("alarms") or {}
    breaker = d.config.get("deploymentCircuitBreaker") or {}
    return _compact(
        {
            "serviceDeploymentArn": d.arn,
            "serviceArn": d.service.arn,
            "clusterArn": d.service.cluster.arn,
            "createdAt": d.created_at,
            "startedAt": d.started_at,
            "finishedAt": d.finished_at,
            "stoppedAt": d.stopped_at,
            "updatedAt": now if moving else d.updated_at,
            "sourceServiceRevisions": [revision_summary(s, weighted) for s in d.sources],
            "targetServiceRevision": revision_summary(d.target, weighted),
            "status": d.status,
            "statusReason": d.status_reason,
            "lifecycleStage": stage,
            "lifecycleHookDetails": [_hook(run) for run in runs],
            "deploymentConfiguration": d.config,
            "rollback": dict(d.rollback) if d.rollback else None,
            "deploymentCircuitBreaker": {
                "status": d.breaker_status,
                "failureCount": d.failure_count,
                "threshold": breaker_threshold(d.desired) if breaker.get("enable") else 0,
            },
            "alarms": {
                "status": d.alarm_status,
                "alarmNames": list(alarms.get("alarmNames") or []),
                "triggeredAlarmNames": list(d.triggered_alarms),
            },
        }
    )


def _hook(run: Any) -> dict[str, Any]:
    return _compact(
        {
            "hookId": run.hook_id,
            "targetType": run.target_type,
            "targetArn": run.target_arn,
            "status": run.status,
            "expiresAt": run.expires_at,
            "timeoutAction": run.timeout_action,
        }
    )


def brief(d: ServiceDeployment) -> dict[str, Any]:
    """A ServiceDeploymentBrief."""
    return _compact(
        {
            "serviceDeploymentArn": d.arn,
            "serviceArn": d.service.arn,
            "clusterArn": d.service.cluster.arn,
            "startedAt": d.started_at,
            "createdAt": d.created_at,
            "finishedAt": d.finished_at,
            "targetServiceRevisionArn": d.target.revision.arn,
            "status": d.status,
            "statusReason": d.status_reason,
        }
    )


def revision(rev: ServiceRevision) -> dict[str, Any]:
    """A ServiceRevision structure."""
    images = [
        {"containerName": name, "image": image, "imageDigest": "sha256:" + hashlib.sha256(image.encode()).hexdigest()}
        for name, image in rev.task_definition.images
    ]
    return _compact(
        {
            "serviceRevisionArn": rev.arn,
            "serviceArn": rev.service_arn,
            "clusterArn": rev.cluster_arn,
            "taskDefinition": rev.task_definition.arn,
            "launchType": rev.launch_type,
            "platformVersion": "1.4.0",
            "platformFamily": "Linux",
            "loadBalancers": rev.load_balancers,
            "serviceRegistries": [],
            "containerImages": images,
            "guardDutyEnabled": False,
            "serviceConnectConfiguration": rev.service_connect,
            "vpcLatticeConfigurations": rev.vpc_lattice or None,
            "createdAt": rev.created_at,
        }
    )


def _revision_states(s: Service) -> list[RevisionState]:
    latest = s.deployments[-1] if s.deployments else None
    known = {r.revision.arn: r for r in ((latest.target, *latest.sources) if latest else ())}
    return [known.get(rev.arn) or RevisionState(rev, s.desired_count, s.desired_count) for rev in s.active_revisions]


def service(s: Service) -> dict[str, Any]:
    """A Service structure."""
    states = _revision_states(s)
    latest = s.deployments[-1] if s.deployments else None
    return _compact(
        {
            "serviceArn": s.arn,
            "serviceName": s.name,
            "clusterArn": s.cluster.arn,
            "loadBalancers": s.load_balancers,
            "serviceRegistries": [],
            "status": "ACTIVE",
            "desiredCount": s.desired_count,
            "runningCount": sum(r.running for r in states),
            "pendingCount": sum(r.pending for r in states),
            "launchType": s.launch_type,
            "platformVersion": "LATEST",
            "platformFamily": "Linux",
            "taskDefinition": s.task_definition.arn,
            "deploymentConfiguration": s.deployment_configuration,
            "deployments": _legacy(s, states, latest),
            "events": [],
            "createdAt": s.created_at,
            "currentServiceDeployment": latest.arn if latest else None,
            "currentServiceRevisions": [{"arn": r.revision.arn, **_counts(r)} for r in states],
            "networkConfiguration": s.network_configuration,
            "schedulingStrategy": "REPLICA",
            "deploymentController": {"type": "ECS"},
            "tags": [],
            "createdBy": f"arn:aws:iam::{ACCOUNT}:role/deploybot",
            "enableECSManagedTags": False,
            "propagateTags": "NONE",
            "enableExecuteCommand": False,
            "availabilityZoneRebalancing": "ENABLED",
        }
    )


def _legacy(s: Service, states: list[RevisionState], latest: ServiceDeployment | None) -> list[dict[str, Any]]:
    # The pre-2024 `deployments` list: PRIMARY is the newest revision, ACTIVE the ones being replaced.
    rollout = "COMPLETED"
    if latest is not None and latest.status not in ("SUCCESSFUL", "ROLLBACK_SUCCESSFUL"):
        rollout = "IN_PROGRESS" if not latest.terminal else "FAILED"
    out = []
    for i, state in enumerate(reversed(states)):
        rev = state.revision
        out.append(
            _compact(
                {
                    "id": "ecs-svc/" + rev.arn.rpartition("/")[2],
                    "status": "PRIMARY" if i == 0 else "ACTIVE",
                    "taskDefinition": rev.task_definition.arn,
                    "desiredCount": state.requested,
                    "pendingCount": state.pending,
                    "runningCount": state.running,
                    "failedTasks": 0,
                    "createdAt": rev.created_at,
                    "updatedAt": latest.updated_at if latest else rev.created_at,
                    "launchType": rev.launch_type,
                    "platformVersion": "1.4.0",
                    "platformFamily": "Linux",
                    "networkConfiguration": s.network_configuration,
                    "rolloutState": rollout if i == 0 else None,
                    "serviceConnectConfiguration": rev.service_connect,
                    "vpcLatticeConfigurations": rev.vpc_lattice or None,
                }
            )
        )
    return out
