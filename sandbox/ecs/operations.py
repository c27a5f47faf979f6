"""The ECS API operations: request parameters (already shape-validated) to response bodies."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import responses as render
from .errors import EcsError, invalid
from .model import Cluster, Service
from .simulator import Engine
from .switches import pause_hook_details
from .validation import validate_deployment_configuration

MAX_DESCRIBE = 20
Operation = Callable[[Engine, dict[str, Any], float], dict[str, Any]]


def _page(
    items: list[Any], token: str | None, max_results: int | None, default: int, limit: int = 100
) -> tuple[list[Any], str | None]:
    size = default if max_results is None else max_results
    if not 1 <= size <= limit:
        raise invalid(f"maxResults must be between 1 and {limit}; got {size}")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
        except ValueError as exc:
            raise invalid("nextToken is not valid") from exc
    end = start + size
    following = base64.urlsafe_b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], following


def create_cluster(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """CreateCluster (idempotent for an existing name)."""
    name = params.get("clusterName") or "default"
    store = engine.store
    if name not in store.clusters:
        namespace = (params.get("serviceConnectDefaults") or {}).get("namespace")
        store.clusters[name] = Cluster(name=name, created_at=now, namespace=namespace)
    return {"cluster": render.cluster(store.clusters[name], store)}


def describe_clusters(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """DescribeClusters: unknown clusters go to `failures`."""
    found, failures = [], []
    for ref in params.get("clusters") or ["default"]:
        try:
            found.append(render.cluster(engine.store.cluster(ref), engine.store))
        except EcsError:
            failures.append({"arn": ref, "reason": "MISSING"})
    return {"clusters": found, "failures": failures}


def register_task_definition(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """RegisterTaskDefinition: the next revision of the family."""
    if not params["containerDefinitions"]:
        raise invalid("containerDefinitions must contain at least one container")
    body = {k: v for k, v in params.items() if k != "tags"}
    td = engine.store.register(params["family"], body, now)
    return {"taskDefinition": render.task_definition(td), "tags": params.get("tags") or []}


def describe_task_definition(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """DescribeTaskDefinition."""
    td = engine.store.task_definition(params["taskDefinition"])
    return {"taskDefinition": render.task_definition(td), "tags": []}


def list_task_definitions(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """ListTaskDefinitions with familyPrefix, status, sort and paging."""
    prefix, status = params.get("familyPrefix") or "", params.get("status") or "ACTIVE"
    tds = [
        td
        for family, revs in sorted(engine.store.families.items())
        if family.startswith(prefix)
        for td in revs
        if td.status == status
    ]
    if params.get("sort") == "DESC":
        tds.reverse()
    page, token = _page([td.arn for td in tds], params.get("nextToken"), params.get("maxResults"), 100)
    return {"taskDefinitionArns": page, **({"nextToken": token} if token else {})}


def normalize_configuration(config: dict[str, Any] | None) -> dict[str, Any]:
    """ECS's defaults for the members a deploymentConfiguration leaves out."""
    out = dict(config or {})
    out.setdefault("deploymentCircuitBreaker", {"enable": False, "rollback": False})
    out.setdefault("maximumPercent", 200)
    out.setdefault("minimumHealthyPercent", 100)
    out.setdefault("strategy", "ROLLING")
    return out


def _configuration(engine: Engine, config: dict[str, Any]) -> dict[str, Any]:
    """A requested deploymentConfiguration as ECS keeps it (the undocumented parts per the switches)."""
    return pause_hook_details(config, engine.switches.get("pause_hook_details"))


def _strict_rolling(engine: Engine) -> bool:
    return engine.switches.get("rolling_shift_hooks") == "reject"


def create_service(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """CreateService: the first deployment starts right away."""
    store = engine.store
    cluster = store.cluster(params.get("cluster"))
    name = params["serviceName"]
    if (cluster.name, name) in store.services:
        raise invalid(f"serviceName {name}: creation of service was not idempotent (it already exists)")
    if not params.get("taskDefinition"):
        raise invalid("taskDefinition is required")
    td = store.task_definition(params["taskDefinition"])
    config = _configuration(engine, params["deploymentConfiguration"]) if "deploymentConfiguration" in params else {}
    config = normalize_configuration(config)
    service = Service(
        name=name,
        cluster=cluster,
        task_definition=td,
        desired_count=int(params.get("desiredCount", 1)),
        load_balancers=params.get("loadBalancers") or [],
        service_connect=params.get("serviceConnectConfiguration"),
        deployment_configuration=config,
        created_at=now,
        launch_type=params.get("launchType") or "FARGATE",
        network_configuration=params.get("networkConfiguration"),
        vpc_lattice=params.get("vpcLatticeConfigurations") or [],
    )
    validate_deployment_configuration(config, service.headless, service.load_balancers, _strict_rolling(engine))
    store.services[(cluster.name, name)] = service
    engine.start(service, store.new_revision(service, now), now)
    return {"service": render.service(service)}


def describe_services(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """DescribeServices: unknown services go to `failures`."""
    cluster = engine.store.cluster(params.get("cluster"))
    found, failures = [], []
    for ref in params["services"]:
        try:
            found.append(render.service(engine.store.service(cluster, ref)))
        except EcsError:
            failures.append({"arn": ref, "reason": "MISSING"})
    return {"services": found, "failures": failures}


def update_service(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """UpdateService: a new task definition, network change or forceNewDeployment starts a deployment."""
    store = engine.store
    service = store.service(store.cluster(params.get("cluster")), params["service"])
    td = store.task_definition(params["taskDefinition"]) if params.get("taskDefinition") else None
    lbs = params.get("loadBalancers", service.load_balancers)
    connect = params.get("serviceConnectConfiguration", service.service_connect)
    config = service.deployment_configuration
    if "deploymentConfiguration" in params:
        # The whole configuration is replaced, not merged (ECS_BEHAVIOUR.md §3).
        config = normalize_configuration(_configuration(engine, params["deploymentConfiguration"]))
    lattice = params.get("vpcLatticeConfigurations", service.vpc_lattice)
    headless = not lbs and not (connect or {}).get("enabled") and not lattice
    validate_deployment_configuration(config, headless, lbs, _strict_rolling(engine))
    redeploy = bool(params.get("forceNewDeployment")) or (td is not None and td is not service.task_definition)
    redeploy = redeploy or lbs != service.load_balancers or connect != service.service_connect
    redeploy = redeploy or lattice != service.vpc_lattice
    service.load_balancers, service.service_connect, service.deployment_configuration = lbs, connect, config
    service.vpc_lattice = lattice
    if params.get("desiredCount") is not None:
        service.desired_count = int(params["desiredCount"])
    if params.get("networkConfiguration"):
        service.network_configuration = params["networkConfiguration"]
    if td is not None:
        service.task_definition = td
    before = service.deployments[-1].arn if service.deployments else None
    if redeploy:
        engine.start(service, store.new_revision(service, now), now)
    return {"service": _updated(engine, service, before)}


def _updated(engine: Engine, service: Service, before: str | None) -> dict[str, Any]:
    """UpdateService's answer, whose currentServiceDeployment follows the `update_service_current_deployment` switch."""
    answer = render.service(service)
    current = engine.switches.get("update_service_current_deployment")
    if current == "absent" or (current == "previous" and before is None):
        answer.pop("currentServiceDeployment", None)
    elif current == "previous":
        answer["currentServiceDeployment"] = before
    return answer


def list_services(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """ListServices with paging."""
    cluster = engine.store.cluster(params.get("cluster"))
    arns = [s.arn for (c, _), s in engine.store.services.items() if c == cluster.name]
    page, token = _page(arns, params.get("nextToken"), params.get("maxResults"), 10)
    return {"serviceArns": page, **({"nextToken": token} if token else {})}


def _epoch(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def list_service_deployments(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """ListServiceDeployments: newest first, filtered by status and createdAt, paged by nextToken."""
    service = engine.store.service(engine.store.cluster(params.get("cluster")), params["service"])
    statuses = set(params.get("status") or [])
    created = params.get("createdAt") or {}
    after = _epoch(created["after"]) if "after" in created else None
    before = _epoch(created["before"]) if "before" in created else None
    chosen = [
        d
        for d in reversed(service.deployments)
        if (not statuses or d.status in statuses)
        and (after is None or d.created_at >= after)
        and (before is None or d.created_at <= before)
    ]
    page, token = _page(chosen, params.get("nextToken"), params.get("maxResults"), 20)
    return {"serviceDeployments": [render.brief(d) for d in page], **({"nextToken": token} if token else {})}


def _check_batch(arns: list[str], field: str) -> None:
    if not arns or len(arns) > MAX_DESCRIBE:
        raise invalid(f"{field} must contain between 1 and {MAX_DESCRIBE} ARNs; got {len(arns)}")


def describe_service_deployments(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """DescribeServiceDeployments: at most 20 ARNs; unknown ones go to `failures`."""
    arns = params["serviceDeploymentArns"]
    _check_batch(arns, "serviceDeploymentArns")
    found, failures = [], []
    for arn in arns:
        d = engine.store.deployments.get(arn)
        if d is None:
            failures.append({"arn": arn, "reason": "MISSING", "detail": "Service deployment not found"})
        else:
            found.append(render.deployment(d, engine.switches.as_dict(), now))
    return {"serviceDeployments": found, "failures": failures}


def describe_service_revisions(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """DescribeServiceRevisions: at most 20 ARNs; unknown ones go to `failures`."""
    arns = params["serviceRevisionArns"]
    _check_batch(arns, "serviceRevisionArns")
    found, failures = [], []
    for arn in arns:
        rev = engine.store.revisions.get(arn)
        if rev is None:
            failures.append({"arn": arn, "reason": "MISSING", "detail": "Service revision not found"})
        else:
            found.append(render.revision(rev))
    return {"serviceRevisions": found, "failures": failures}


def continue_service_deployment(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """ContinueServiceDeployment: CONTINUE or ROLLBACK a PAUSE hook awaiting action."""
    d = engine.store.deployment(params["serviceDeploymentArn"])
    engine.continue_hook(d, params["hookId"], params.get("action") or "CONTINUE", now)
    return {"serviceDeploymentArn": d.arn}


def stop_service_deployment(engine: Engine, params: dict[str, Any], now: float) -> dict[str, Any]:
    """StopServiceDeployment (stopType ROLLBACK)."""
    d = engine.store.deployment(params["serviceDeploymentArn"])
    engine.stop(d, params.get("stopType") or "ROLLBACK", now)
    return {"serviceDeploymentArn": d.arn}


OPERATIONS: dict[str, Operation] = {
    "CreateCluster": create_cluster,
    "DescribeClusters": describe_clusters,
    "RegisterTaskDefinition": register_task_definition,
    "DescribeTaskDefinition": describe_task_definition,
    "ListTaskDefinitions": list_task_definitions,
    "CreateService": create_service,
    "DescribeServices": describe_services,
    "UpdateService": update_service,
    "ListServices": list_services,
    "ListServiceDeployments": list_service_deployments,
    "DescribeServiceDeployments": describe_service_deployments,
    "DescribeServiceRevisions": describe_service_revisions,
    "ContinueServiceDeployment": continue_service_deployment,
    "StopServiceDeployment": stop_service_deployment,
}
