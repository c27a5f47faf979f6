"""Many live deployments at once, fast: services made inside the ECS sandbox's process, rows bulk-inserted.

Going through request_deploy costs ~25-40 ms a deployment (HTTP, policy, eight ECS calls); 10,000 of them would
take minutes of setup for a phase that measures the reconciler, not the request path. So the sandbox is driven
in-process (its own `Sandbox.call`, so validation and the deployment plans are the real ones) and the bot's rows
are written as request_deploy leaves them once ECS has started (status IN_PROGRESS, the ECS ARN attached).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

from bench.stack import CLUSTER, FAMILY, LOAD_BALANCERS, REGION, Stack
from bot.domain.enums import DeploymentStatus, HookStage, Strategy
from bot.domain.machine.state import Tracked
from bot.domain.snapshot import StartSpec
from bot.ecs.requests import deployment_configuration
from models import Deployment, utcnow
from sandbox.slack import workspace as ws

# Every other live deployment waits for an approval before its production traffic; the rest bake for 30 min after
# a canary or linear step, so most of them are quiet once they got there, and some move (scale-ups, shifts).
SPECS = (
    StartSpec(Strategy.CANARY, f"{FAMILY}:2", approval_stages=(HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT,)),
    StartSpec(Strategy.CANARY, f"{FAMILY}:2", canary_bake=timedelta(minutes=30), bake=timedelta(minutes=30)),
    StartSpec(Strategy.BLUE_GREEN, f"{FAMILY}:2", approval_stages=(HookStage.POST_TEST_TRAFFIC_SHIFT,)),
    StartSpec(Strategy.LINEAR, f"{FAMILY}:2", linear_step_percent=10.0, step_bake=timedelta(minutes=30)),
)


# What a catalog with approvals starts (bench_catalog(approvals=True)): a canary pausing before production traffic.
APPROVAL = (SPECS[0],)


@dataclass
class Seeded:
    ids: list[int]
    keys: list[str]


def _call(stack: Stack, operation: str, **params: Any) -> dict[str, Any]:
    status, body = stack.ecs.sandbox.call(operation, json.dumps(params).encode())
    answer: dict[str, Any] = json.loads(body)
    if status != 200:
        raise RuntimeError(f"{operation}: {answer}")
    return answer


def register_families(stack: Stack) -> None:
    """Revision 1 (what the services run) and revision 2 (what they deploy)."""
    for version in ("1.0", "2.0"):
        _call(
            stack,
            "RegisterTaskDefinition",
            family=FAMILY,
            containerDefinitions=[
                {
                    "name": FAMILY,
                    "image": f"public.ecr.aws/unicorn-watch/bench:{version}",
                    "essential": True,
                    "portMappings": [{"containerPort": 8080}],
                }
            ],
        )


ROLLING = {"strategy": "ROLLING", "maximumPercent": 200, "minimumHealthyPercent": 100}


def create_services(stack: Stack, keys: list[str]) -> None:
    """Create `keys` as services on revision 1 and let their first (rolling) deployments finish."""
    for key in keys:
        _call(
            stack,
            "CreateService",
            cluster=CLUSTER,
            serviceName=key,
            taskDefinition=f"{FAMILY}:1",
            desiredCount=2,
            loadBalancers=LOAD_BALANCERS,
            deploymentConfiguration=ROLLING,
        )
    stack.ecs.sandbox.advance(600)


def seed_live(
    stack: Stack,
    keys: list[str],
    channels: list[str],
    advance: float = 150.0,
    specs: tuple[StartSpec, ...] = SPECS,
    moving_share: float = 0.25,
) -> Seeded:
    """Create `keys` as services, start a deployment on each, move ECS on by `advance` s, insert the bot's rows.

    The last `moving_share` of them start after that move, so they are still scaling up (moving) when it ends.
    """
    create_services(stack, keys)
    later = len(keys) - int(len(keys) * moving_share)
    for i, key in enumerate(keys):
        if i == later:
            stack.ecs.sandbox.advance(advance)
        config = deployment_configuration(ROLLING, specs[i % len(specs)])
        _call(
            stack,
            "UpdateService",
            cluster=CLUSTER,
            service=key,
            taskDefinition=f"{FAMILY}:2",
            deploymentConfiguration=config,
        )
    if later >= len(keys):
        stack.ecs.sandbox.advance(advance)
    store = stack.ecs.sandbox.engine.store
    arn_of = {d.service.name: d.arn for d in store.deployments.values() if d.status in ("PENDING", "IN_PROGRESS")}
    now = utcnow()
    rows = [
        {
            "service_key": key,
            "cluster": CLUSTER,
            "service": key,
            "region": REGION,
            "strategy": specs[i % len(specs)].strategy,
            "approval_stages": [str(s) for s in specs[i % len(specs)].approval_stages],
            "taskdef_to": f"{FAMILY}:2",
            "ecs_deployment_arn": arn_of[key],
            "status": DeploymentStatus.IN_PROGRESS,
            "tracked": Tracked.start(specs[i % len(specs)].strategy).to_json(),
            "requested_by": ws.ALICE,
            "channel_id": channels[i % len(channels)],
            "created_at": now,
            "updated_at": now,
            "started_at": now,
            "version": 1,
        }
        for i, key in enumerate(keys)
    ]
    with stack.ctx.sessions() as session, session.begin():
        for start in range(0, len(rows), 1000):
            session.execute(insert(Deployment), rows[start : start + 1000])
    with stack.ctx.sessions() as session:
        by_key = dict(session.execute(select(Deployment.service_key, Deployment.id)).tuples().all())
    return Seeded([int(by_key[k]) for k in keys], keys)
