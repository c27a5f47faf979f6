"""In-memory ECS objects (clusters, task definitions, services, service revisions, service deployments).

Everything here is plain data guarded by the sandbox's global lock; the deployment state machine lives in
`engine.py`. Times are sandbox epoch seconds (floats), which is also how JSON 1.1 serializes timestamps.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from typing import Any

from .errors import EcsError

REGION = "us-east-1"
ACCOUNT = "123456789012"
TERMINAL = frozenset({"SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED"})
ACTIVE = frozenset({"PENDING", "IN_PROGRESS"})


def ecs_arn(resource: str) -> str:
    """ARN of an ECS resource in the sandbox's account and Region."""
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:{resource}"


def lambda_arn(name: str) -> str:
    """ARN of a Lambda function in the sandbox's account and Region."""
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@dataclass
class Cluster:
    """An ECS cluster."""

    name: str
    created_at: float
    namespace: str | None = None

    @property
    def arn(self) -> str:
        """The cluster ARN."""
        return ecs_arn(f"cluster/{self.name}")


@dataclass
class TaskDefinition:
    """One registered revision of a task-definition family."""

    family: str
    revision: int
    body: dict[str, Any]
    registered_at: float
    status: str = "ACTIVE"

    @property
    def arn(self) -> str:
        """The task definition ARN (family:revision)."""
        return ecs_arn(f"task-definition/{self.family}:{self.revision}")

    @property
    def images(self) -> list[tuple[str, str]]:
        """(containerName, image) for every container."""
        return [(c.get("name", ""), c.get("image", "")) for c in self.body.get("containerDefinitions", [])]

    @property
    def broken(self) -> bool:
        """True when an image tag contains `broken`: its tasks never become healthy (circuit-breaker demo)."""
        return any("broken" in image.rpartition(":")[2] for _, image in self.images)


@dataclass
class ServiceRevision:
    """An immutable snapshot of a service's task definition, load balancers and Service Connect config."""

    arn: str
    service_arn: str
    cluster_arn: str
    task_definition: TaskDefinition
    load_balancers: list[dict[str, Any]]
    service_connect: dict[str, Any] | None
    launch_type: str
    created_at: float
    vpc_lattice: list[dict[str, Any]] = field(default_factory=list)

    @property
    def headless(self) -> bool:
        """No load balancer, Service Connect or VPC Lattice in this revision."""
        return not self.load_balancers and not (self.service_connect or {}).get("enabled") and not self.vpc_lattice


@dataclass
class Service:
    """An ECS service and the configuration its next deployment will use."""

    name: str
    cluster: Cluster
    task_definition: TaskDefinition
    desired_count: int
    load_balancers: list[dict[str, Any]]
    service_connect: dict[str, Any] | None
    deployment_configuration: dict[str, Any]
    created_at: float
    launch_type: str = "FARGATE"
    network_configuration: dict[str, Any] | None = None
    vpc_lattice: list[dict[str, Any]] = field(default_factory=list)  # vpcLatticeConfigurations
    active_revisions: list[ServiceRevision] = field(default_factory=list)
    deployments: list[ServiceDeployment] = field(default_factory=list)

    @property
    def arn(self) -> str:
        """The service ARN (long format, includes the cluster)."""
        return ecs_arn(f"service/{self.cluster.name}/{self.name}")

    @property
    def headless(self) -> bool:
        """No load balancer, Service Connect or VPC Lattice: nothing to shift traffic on."""
        return not self.load_balancers and not (self.service_connect or {}).get("enabled") and not self.vpc_lattice


@dataclass
class RevisionState:
    """A revision's part in a deployment: task counts and requested traffic weights."""

    revision: ServiceRevision
    requested: int = 0
    running: int = 0
    pending: int = 0
    test_weight: float = 0.0
    prod_weight: float = 0.0


@dataclass
class HookRun:
    """One invocation of one lifecycle hook in the current stage."""

    hook_id: str
    target_type: str
    target_arn: str | None
    hook_stage: str
    status: str
    expires_at: float
    timeout_action: str
    details: dict[str, Any] = field(default_factory=dict)
    due_at: float | None = None  # next Lambda invocation; None while a remote call is in flight
    outcome: str | None = None  # "ok" or "fail" once the hook has decided


@dataclass
class Step:
    """One instruction of a deployment plan (see plan.py)."""

    kind: str
    name: str = ""
    seconds: float = 0.0
    test: float | None = None
    prod: float | None = None


@dataclass
class ServiceDeployment:
    """A service deployment and its progress through its plan."""

    arn: str
    service: Service
    created_at: float
    config: dict[str, Any]
    target: RevisionState
    sources: list[RevisionState]
    desired: int
    status: str = "PENDING"
    status_reason: str | None = None
    lifecycle_stage: str | None = None
    started_at: float | None = None
    updated_at: float | None = None
    finished_at: float | None = None
    stopped_at: float | None = None
    rollback: dict[str, Any] | None = None
    hooks: list[HookRun] = field(default_factory=list)
    past_hooks: list[HookRun] = field(default_factory=list)  # earlier stages' runs, oldest first
    plan: list[Step] = field(default_factory=list)
    pc: int = 0
    wait_until: float | None = None
    hook_step: int = -1  # plan index whose hooks `hooks` belongs to
    token: int = 0  # invalidates stale wake-ups in the engine heap
    wake_at: float | None = None
    breaker_status: str = "DISABLED"
    failure_count: int = 0
    alarm_status: str = "DISABLED"
    ignored_alarms: set[str] = field(default_factory=set)
    triggered_alarms: list[str] = field(default_factory=list)
    seq: int = 0

    @property
    def strategy(self) -> str:
        """The deployment strategy (ROLLING when unset)."""
        return str(self.config.get("strategy") or "ROLLING")

    @property
    def terminal(self) -> bool:
        """Whether the deployment has finished."""
        return self.status in TERMINAL


def random_id(length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    """A random identifier like the ones ECS puts at the end of its ARNs."""
    return "".join(random.choice(alphabet) for _ in range(length))


class Store:
    """All ECS objects, indexed for the lookups the API needs."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}
        self.families: dict[str, list[TaskDefinition]] = {}
        self.services: dict[tuple[str, str], Service] = {}
        self.revisions: dict[str, ServiceRevision] = {}
        self.deployments: dict[str, ServiceDeployment] = {}
        self._seq = 0

    def next_seq(self) -> int:
        """A monotonically increasing number for stable ordering."""
        self._seq += 1
        return self._seq

    def cluster(self, ref: str | None) -> Cluster:
        """Resolve a cluster name or ARN (ECS defaults to `default`)."""
        name = (ref or "default").rpartition("/")[2] if (ref or "").startswith("arn:") else (ref or "default")
        found = self.clusters.get(name)
        if found is None:
            raise EcsError("ClusterNotFoundException", f"Cluster not found: {ref or 'default'}")
        return found

    def service(self, cluster: Cluster, ref: str) -> Service:
        """Resolve a service name or ARN inside a cluster."""
        name = ref.rpartition("/")[2] if ref.startswith("arn:") else ref
        found = self.services.get((cluster.name, name))
        if found is None:
            raise EcsError("ServiceNotFoundException", f"Service not found: {ref}")
        return found

    def register(self, family: str, body: dict[str, Any], at: float) -> TaskDefinition:
        """Register the next revision of a family."""
        revisions = self.families.setdefault(family, [])
        td = TaskDefinition(family=family, revision=len(revisions) + 1, body=body, registered_at=at)
        revisions.append(td)
        return td

    def task_definition(self, ref: str) -> TaskDefinition:
        """Resolve `family`, `family:revision` or a task definition ARN (a bare family means latest ACTIVE)."""
        text = ref.rpartition("task-definition/")[2] if ref.startswith("arn:") else ref
        family, _, rev = text.partition(":")
        revisions = self.families.get(family, [])
        if rev:
            if rev.isdigit() and 0 < int(rev) <= len(revisions):
                return revisions[int(rev) - 1]
        else:
            active = [td for td in revisions if td.status == "ACTIVE"]
            if active:
                return active[-1]
        raise EcsError("ClientException", f"Unable to describe task definition: {ref} (taskDefinition)")

    def new_revision(self, service: Service, at: float) -> ServiceRevision:
        """Snapshot the service's current configuration as a new service revision."""
        rev_id = str(random.randrange(10**18, 10**19))
        revision = ServiceRevision(
            arn=ecs_arn(f"service-revision/{service.cluster.name}/{service.name}/{rev_id}"),
            service_arn=service.arn,
            cluster_arn=service.cluster.arn,
            task_definition=service.task_definition,
            load_balancers=[dict(lb) for lb in service.load_balancers],
            service_connect=dict(service.service_connect) if service.service_connect else None,
            launch_type=service.launch_type,
            created_at=at,
            vpc_lattice=[dict(v) for v in service.vpc_lattice],
        )
        self.revisions[revision.arn] = revision
        return revision

    def deployment(self, arn: str) -> ServiceDeployment:
        """Look up a service deployment by ARN."""
        found = self.deployments.get(arn)
        if found is None:
            raise EcsError("ServiceDeploymentNotFoundException", f"Service deployment not found: {arn}")
        return found

    def new_deployment_arn(self, service: Service) -> str:
        """A fresh service deployment ARN for the service."""
        alphabet = string.ascii_letters + string.digits + "-_"
        return ecs_arn(f"service-deployment/{service.cluster.name}/{service.name}/{random_id(21, alphabet)}")
