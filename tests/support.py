"""Test support shared across suites: the ECS sandbox control client, a fake Slack membership, a harness."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog, load_catalog
from bot.domain.enums import ActorSource
from bot.domain.readmodels import DeploymentView
from bot.ecs.gateway import EcsGateway
from bot.engine.answers import Actor
from bot.engine.usecases import UseCases
from models.base import utcnow

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {"S0APPROVERS": frozenset({"U0BOB", "U0CAROL"}), "S0ONCALL": frozenset({"U0CAROL"})}


class Control:
    """The ECS sandbox's control API over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path}",
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request) as response:
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.url}/_sandbox/{path}") as response:
            return json.loads(response.read())

    def advance(self, seconds: float) -> float:
        return float(self.post("advance", {"seconds": seconds})["now"])

    def calls(self, operation: str) -> list[dict[str, Any]]:
        return list(self.get(f"calls?operation={operation}")["calls"])

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.get("state")["now"], UTC)

    def wake(self, arn: str) -> bool:
        """Jump the clock to the deployment's next wake-up; False once it has none."""
        state = self.get(f"state?deployment={arn}")
        if state["nextWakeAt"] is None:
            return False
        self.post("advance", {"seconds": max(0.0, state["nextWakeAt"] - state["now"]) + 0.001})
        return True


def membership(group_id: str) -> frozenset[str]:
    """The seeded workspace's user groups (what usergroups.users.list would answer)."""
    return GROUPS.get(group_id, frozenset())


def example_catalog() -> Catalog:
    """The example catalog describing the sandbox's services."""
    return load_catalog(ROOT / "services.example.yml")


def actor(user: str = "U0ALICE", channel: str = "C0DEPLOYS", source: str = "command") -> Actor:
    """Someone acting from a channel."""
    return Actor(user_id=user, channel_id=channel, team_id="T0UNICORN", source=ActorSource(source))


@dataclass
class Harness:
    """Use cases on a real database against the ECS sandbox, with helpers to drive time."""

    usecases: UseCases
    control: Control
    sessions: sessionmaker[Session]

    def view(self, dep_id: int) -> DeploymentView:
        view = self.usecases.deployments.view(dep_id, with_events=True)
        assert view is not None
        return view

    def run_until(self, dep_id: int, done: Callable[[DeploymentView], bool], limit: int = 400) -> DeploymentView:
        """Reconcile, then jump the sandbox to its next wake-up, until `done` holds."""
        return drive_until(
            self.control, self.usecases.reconciler.reconcile_once, lambda: self.view(dep_id), done, limit
        )


def drive_until(
    control: Control,
    step: Callable[[], object],
    view: Callable[[], DeploymentView],
    done: Callable[[DeploymentView], bool],
    limit: int = 400,
) -> DeploymentView:
    """Run `step` (a reconcile pass…), then jump the ECS sandbox to the deployment's next wake-up, until `done`."""
    for _ in range(limit):
        step()
        current = view()
        if done(current):
            return current
        if not (current.ecs_deployment_arn and control.wake(current.ecs_deployment_arn)):
            control.advance(5)
    raise AssertionError(f"deployment #{view().id} never got there: {view().status}")


def make_usecases(
    sessions: sessionmaker[Session],
    sandbox_url: str,
    catalog: Catalog | None = None,
    *,
    owner: str = "test",
    clock: Callable[[], datetime] = utcnow,
) -> UseCases:
    """Use cases wired to the sandbox, the example catalog and the seeded workspace's groups."""
    gateway = EcsGateway(endpoint_url=sandbox_url, max_attempts=2)
    return UseCases(sessions, catalog or example_catalog(), gateway, membership, owner=owner, clock=clock)
