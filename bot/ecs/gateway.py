"""The ECS gateway: the only module of the bot that talks to AWS (through boto3). Returns dataclasses, never dicts.

Every call goes through `_call`, which turns botocore's exceptions into `EcsError`, or `EcsUnavailable` when
ECS throttles or fails on its side (callers retry those later and never mark a deployment failed for them), and
counts it in bot/ecs/metrics.py; tests/test_deploy_files.py reads the operations named here to check the IAM policy.

Retries are the gateway's, not botocore's (bot/ecs/clients.py): a read is retried after any temporary fault, a
change (UpdateService, ContinueServiceDeployment, …) only after a throttle, which ECS refused before doing anything.
After a 5xx or a timeout a change may have landed, so it is not sent again here: the caller asks ECS first.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from botocore import xform_name
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.snapshot import (
    Credentials,
    DescribeResult,
    EcsError,
    EcsUnavailable,
    HookAction,
    ServiceInfo,
    Snapshot,
    StartSpec,
    snapshot_from_api,
    task_definition_name,
)
from bot.ecs import metrics
from bot.ecs.clients import AssumeRole, ClientCache, client_config, warm_models
from bot.ecs.requests import container_image, deployment_configuration, register_params

if TYPE_CHECKING:  # boto3-stubs is a development dependency
    from mypy_boto3_ecs import ECSClient

__all__ = [
    "Credentials",
    "DescribeResult",
    "EcsError",
    "EcsGateway",
    "EcsUnavailable",
    "ServiceInfo",
    "Snapshot",
    "StartSpec",
    "has_credentials",
    "snapshot_from_api",
]

T = TypeVar("T")
BATCH = 20  # DescribeServiceDeployments and DescribeServiceRevisions take at most 20 ARNs
UNAVAILABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ServerException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalFailure",
        "InternalServerError",
    }
)


# Reads: sending one again changes nothing, whatever happened to the first.
IDEMPOTENT = frozenset(
    {
        "DescribeServices",
        "DescribeTaskDefinition",
        "DescribeServiceDeployments",
        "DescribeServiceRevisions",
        "ListServiceDeployments",
    }
)
BACKOFF_BASE = 0.1  # seconds, doubled per attempt, full jitter
THROTTLE_BACKOFF_BASE = 0.5
BACKOFF_CAP = 4.0


def may_retry(operation: str, error: EcsUnavailable) -> bool:
    """A read after any temporary fault; a change only when ECS throttled it (refused before doing anything)."""
    return operation in IDEMPOTENT or error.code in metrics.THROTTLING_CODES


def backoff(attempt: int, error: EcsUnavailable, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before attempt `attempt + 1`: capped exponential with full jitter, longer after a throttle."""
    base = THROTTLE_BACKOFF_BASE if error.code in metrics.THROTTLING_CODES else BACKOFF_BASE
    return float(rand() * min(BACKOFF_CAP, base * 2.0 ** (attempt - 1)))


def chunks(items: Sequence[T], size: int = BATCH) -> Iterator[list[T]]:
    """Consecutive slices of at most `size` items."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _translate(exc: ClientError, operation: str) -> EcsError:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", "Unknown"))
    message = str(error.get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    if code in UNAVAILABLE_CODES or status >= 500:
        return EcsUnavailable(code, message, operation)
    return EcsError(code, message, operation)


def _once(method: Callable[..., Any], operation: str, params: dict[str, Any]) -> dict[str, Any]:
    try:
        return dict(method(**params))
    except ClientError as exc:
        raise _translate(exc, operation) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise EcsUnavailable("ConnectionError", str(exc), operation) from exc


def _same_task_definition(a: str, b: str) -> bool:
    return task_definition_name(a) == task_definition_name(b)


def has_credentials() -> bool:
    """True when boto3's credential chain finds credentials (environment, profile, instance role…)."""
    import boto3

    return boto3.Session().get_credentials() is not None


class EcsGateway:
    """ECS operations the deployment engine needs, per catalog service (region and optional role)."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        assume_role: AssumeRole | None = None,
        max_attempts: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._config = config = client_config(connect_timeout, read_timeout)
        self._clients = ClientCache(config, endpoint_url=endpoint_url, assume_role=assume_role)
        self.max_attempts = max_attempts  # every attempt, the first included
        self._sleep = sleep

    def warm(self, region: str | None) -> None:
        """Parse ECS's model and endpoint rules now (no network call), so the first request does not wait on it."""
        # What is parsed is the same for every region; a client needs one, so any will do when none is set.
        warm_models(region or "us-east-1", self._config)

    def client(self, region: str, role_arn: str | None = None) -> ECSClient:
        """The cached boto3 ECS client for a region and role (for diagnostics and tests)."""
        return self._clients.get(region, role_arn)

    def _call(self, region: str, role_arn: str | None, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self.client(region, role_arn), xform_name(operation))
        started = time.monotonic()
        metrics.CALLS.labels(operation).inc()
        try:
            return self._attempts(method, operation, params)
        except EcsUnavailable as error:
            kind = "connection" if error.code == "ConnectionError" else metrics.error_kind(error.code, True)
            metrics.ERRORS.labels(operation, kind).inc()
            raise
        except EcsError as error:
            metrics.ERRORS.labels(operation, metrics.error_kind(error.code, False)).inc()
            raise
        finally:
            metrics.SECONDS.labels(operation).observe(time.monotonic() - started)

    def _attempts(self, method: Callable[..., Any], operation: str, params: dict[str, Any]) -> dict[str, Any]:
        attempt = 1
        while True:
            try:
                return _once(method, operation, params)
            except EcsUnavailable as error:
                if attempt >= self.max_attempts or not may_retry(operation, error):
                    raise
                self._sleep(backoff(attempt, error))
                attempt += 1

    def _svc_call(self, cfg: ServiceConfig, operation: str, **params: Any) -> dict[str, Any]:
        return self._call(cfg.region, cfg.role_arn, operation, **params)

    # Reading the service -------------------------------------------------------------------------------------

    def _describe_service(self, cfg: ServiceConfig) -> dict[str, Any]:
        answer = self._svc_call(cfg, "DescribeServices", cluster=cfg.cluster, services=[cfg.service])
        services = answer.get("services") or []
        if not services:
            reasons = ", ".join(f.get("reason", "?") for f in answer.get("failures") or []) or "MISSING"
            raise EcsError("ServiceNotFoundException", f"{cfg.cluster}/{cfg.service}: {reasons}", "DescribeServices")
        return dict(services[0])

    def read_service(self, cfg: ServiceConfig) -> ServiceInfo:
        """The service's ARN, task definition, container image, deployment configuration and traffic setup."""
        service = self._describe_service(cfg)
        task_def = self._svc_call(cfg, "DescribeTaskDefinition", taskDefinition=service["taskDefinition"])
        try:
            image = container_image(task_def["taskDefinition"], cfg.container)
        except KeyError as exc:
            raise EcsError("ContainerNotFound", str(exc.args[0]), "DescribeTaskDefinition") from exc
        return ServiceInfo(
            service_arn=service["serviceArn"],
            cluster=cfg.cluster,
            service_name=service.get("serviceName", cfg.service),
            task_definition_arn=task_def["taskDefinition"]["taskDefinitionArn"],
            container=cfg.container,
            image=image,
            desired_count=int(service.get("desiredCount") or 0),
            deployment_configuration=dict(service.get("deploymentConfiguration") or {}),
            has_load_balancers=bool(service.get("loadBalancers")),
            has_service_connect=any(
                (d.get("serviceConnectConfiguration") or {}).get("enabled") for d in service.get("deployments") or ()
            ),
            current_deployment_arn=service.get("currentServiceDeployment"),
            load_balancers=tuple(dict(lb) for lb in service.get("loadBalancers") or ()),
            has_vpc_lattice=any(d.get("vpcLatticeConfigurations") for d in service.get("deployments") or ()),
        )

    # Changing the service ------------------------------------------------------------------------------------

    def register_image(self, cfg: ServiceConfig, base_task_definition_arn: str, image: str) -> str:
        """Register a copy of the task definition whose catalog container runs `image` (`:tag` keeps the repo)."""
        answer = self._svc_call(
            cfg, "DescribeTaskDefinition", taskDefinition=base_task_definition_arn, include=["TAGS"]
        )
        try:
            params = register_params(answer["taskDefinition"], answer.get("tags") or [], cfg.container, image)
        except KeyError as exc:
            raise EcsError("ContainerNotFound", str(exc.args[0]), "RegisterTaskDefinition") from exc
        registered = self._svc_call(cfg, "RegisterTaskDefinition", **params)
        return str(registered["taskDefinition"]["taskDefinitionArn"])

    def start_deployment(self, cfg: ServiceConfig, spec: StartSpec, current: ServiceInfo | None = None) -> str | None:
        """UpdateService to the spec's task definition, with the service's settings and Lambda hooks, and our pauses.

        Returns the service deployment it started, read from the response's `service.currentServiceDeployment`;
        None when the response does not name a new one (absent, or still the one before): then list for it.
        """
        current = current or self.read_service(cfg)
        params: dict[str, Any] = {
            "cluster": cfg.cluster,
            "service": cfg.service,
            "taskDefinition": spec.task_definition,
            "deploymentConfiguration": deployment_configuration(current.deployment_configuration, spec),
        }
        if _same_task_definition(spec.task_definition, current.task_definition_arn):
            params["forceNewDeployment"] = True
        answer = self._svc_call(cfg, "UpdateService", **params)
        arn = (answer.get("service") or {}).get("currentServiceDeployment")
        return str(arn) if arn and arn != current.current_deployment_arn else None

    # Finding and describing service deployments --------------------------------------------------------------

    def _briefs(self, cfg: ServiceConfig, created_after: datetime) -> list[dict[str, Any]]:
        briefs: list[dict[str, Any]] = []
        params: dict[str, Any] = {
            "cluster": cfg.cluster,
            "service": cfg.service,
            # No status filter: a fast deployment (or an immediate rollback) may have ended already.
            "createdAt": {"after": created_after},
        }
        while True:  # ListServiceDeployments has no botocore paginator
            answer = self._svc_call(cfg, "ListServiceDeployments", **params)
            briefs.extend(answer.get("serviceDeployments") or [])
            if not answer.get("nextToken"):
                break
            params["nextToken"] = answer["nextToken"]
        return sorted(briefs, key=lambda b: b.get("createdAt") or created_after, reverse=True)

    def _revision_task_definitions(self, cfg: ServiceConfig, arns: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for batch in chunks(list(dict.fromkeys(arns))):
            answer = self._svc_call(cfg, "DescribeServiceRevisions", serviceRevisionArns=batch)
            for revision in answer.get("serviceRevisions") or []:
                found[revision["serviceRevisionArn"]] = revision.get("taskDefinition", "")
        return found

    def find_service_deployment(
        self, cfg: ServiceConfig, task_definition_arn: str, created_after: datetime
    ) -> str | None:
        """The newest service deployment, in any status, created after `created_after` targeting the task def."""
        briefs = self._briefs(cfg, created_after)
        targets = [b["targetServiceRevisionArn"] for b in briefs if b.get("targetServiceRevisionArn")]
        task_defs = self._revision_task_definitions(cfg, targets) if targets else {}
        for brief in briefs:
            task_def = task_defs.get(brief.get("targetServiceRevisionArn", ""))
            if task_def and _same_task_definition(task_def, task_definition_arn):
                return str(brief["serviceDeploymentArn"])
        return None

    def describe(self, region: str, role_arn: str | None, arns: Sequence[str]) -> DescribeResult:
        """Snapshots of service deployments, 20 ARNs per DescribeServiceDeployments call."""
        snapshots: list[Snapshot] = []
        missing: list[str] = []
        for batch in chunks(list(dict.fromkeys(arns))):
            answer = self._call(region, role_arn, "DescribeServiceDeployments", serviceDeploymentArns=batch)
            snapshots.extend(self._clients.memo.snapshot(d) for d in answer.get("serviceDeployments") or [])
            missing.extend(f["arn"] for f in answer.get("failures") or [] if f.get("arn"))
        return DescribeResult(tuple(snapshots), tuple(missing))

    def describe_one(self, region: str, role_arn: str | None, arn: str) -> Snapshot | None:
        """One service deployment, or None when ECS no longer knows it."""
        return self.describe(region, role_arn, [arn]).by_arn().get(arn)

    # Acting on a running deployment --------------------------------------------------------------------------

    def continue_hook(self, region: str, role_arn: str | None, arn: str, hook_id: str, action: HookAction) -> None:
        """Resolve a PAUSE hook that awaits action: CONTINUE lets the deployment go on, ROLLBACK rolls it back."""
        self._call(
            region, role_arn, "ContinueServiceDeployment", serviceDeploymentArn=arn, hookId=hook_id, action=action
        )

    def stop(self, region: str, role_arn: str | None, arn: str) -> None:
        """Stop a PENDING or IN_PROGRESS service deployment by rolling it back."""
        self._call(region, role_arn, "StopServiceDeployment", serviceDeploymentArn=arn, stopType="ROLLBACK")
