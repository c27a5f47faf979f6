"""Two replicas of `deploybot run`, one of them with ECS answering its describes in 5 s: longer than the 3 s lease.

A healthy but slow pass keeps its deployments (it renews their leases while its describe is in flight), so the other
replica never describes a deployment whose describe is still on its way; once the slow replica is killed (-9), the
other takes its deployments at its next pass. Outcomes are read from the ECS sandbox's call log (who called, when
each call was received and answered), not from timings.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.grammar import parser as grammar
from models import Deployment
from sandbox.slack.server import SlackSandboxHandle
from tests.reliability.conftest import backend
from tests.reliability.figures import record
from tests.reliability.fleet import ROOT, Replica, access_key, start_replicas
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()
LEASE_SECONDS = 3
SLOW_DESCRIBE = 5.0  # seconds: what one healthy describe can take with ECS slow and botocore's retries
POLL = 0.5
COMMANDS = ("orders image=:2.0.1", "notifications", "ui bluegreen", "catalog canary 10%")
DESCRIBE = "DescribeServiceDeployments"
SLOW, OTHER = access_key(0), access_key(1)


@pytest.fixture
def replicas(
    harness: Harness, database_url: str, slack: SlackSandboxHandle, ecs_url: str, tmp_path: Path
) -> Iterator[list[Replica]]:
    slack.store.reset()
    for text in COMMANDS:  # started in ECS (its clock stands still: they stay in progress), then left to replicas
        answer = harness.usecases.handle(actor(), grammar.parse(text, CATALOG))
        assert answer.ok, answer.text
    only_one = {"min": SLOW_DESCRIBE, "max": SLOW_DESCRIBE, "operations": [DESCRIBE], "callers": [SLOW]}
    harness.control.post("latency", only_one)
    settings = {"DEPLOYBOT_LEASE_SECONDS": str(LEASE_SECONDS)}
    fleet = start_replicas(
        2, tmp_path, database_url, ROOT / "services.example.yml", slack.api_url, ecs_url, POLL, settings
    )
    try:
        yield fleet
    finally:
        for replica in fleet:
            replica.stop()
        harness.control.post("latency", {"min": 0, "max": 0})


def describes(harness: Harness, caller: str) -> list[dict[str, Any]]:
    return [c for c in harness.control.calls(DESCRIBE) if c["caller"] == caller]


def duplicated_in_flight(harness: Harness, alive_until: float) -> dict[int, list[str]]:
    """Per describe of the slow replica (by its index): the deployments the other described while it was in flight
    and its caller alive (a killed replica's describe still runs in the sandbox: the survivor rightly takes over)."""
    found: dict[int, list[str]] = {}
    others = [c for c in describes(harness, OTHER) if c["received"] < alive_until]
    for i, slow in enumerate(describes(harness, SLOW)):
        arns = set(_arns(slow))
        for other in others:
            if slow["received"] <= other["received"] < slow["answered"]:
                found.setdefault(i, []).extend(a for a in _arns(other) if a in arns)
    return {i: arns for i, arns in found.items() if arns}


def _arns(call: dict[str, Any]) -> list[str]:
    """The deployments a describe asked about; none when its body never fully arrived (its sender was killed while
    sending it: the sandbox recorded it refused, with no parameters)."""
    return list(call["parameters"].get("serviceDeploymentArns") or [])


def wait(what: str, done: Any, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def described_after(harness: Harness, since: float) -> set[str]:
    """ARNs the surviving replica described in calls it made after `since` (wall clock)."""
    calls = [c for c in describes(harness, OTHER) if c["received"] > since]
    return {arn for c in calls for arn in c["parameters"]["serviceDeploymentArns"]}


def held_by(harness: Harness, replica: Replica) -> set[str]:
    """ARNs of the deployments the replica's reconciler holds now (its lease owner is host:pid)."""
    owner = f"{socket.gethostname()}:{replica.proc.pid}"
    with harness.sessions() as session:
        stmt = select(Deployment.ecs_deployment_arn).where(Deployment.lease_owner == owner)
        return {a for a in session.scalars(stmt) if a}


def test_a_slow_replica_keeps_its_deployments_and_a_killed_one_loses_them_at_once(
    harness: Harness, replicas: list[Replica], database_url: str
) -> None:
    slow, other = replicas
    wait("the slow replica has finished 3 describes", lambda: len(describes(harness, SLOW)) >= 3)
    in_flight: set[str] = set()  # read once and kept: the slow replica may release them the moment after

    def holding() -> bool:
        in_flight.update(held_by(harness, slow))
        return bool(in_flight)

    wait("the slow replica holds deployments (its describe in flight)", holding)
    killed = time.time()
    slow.kill()
    wait("the survivor describes what the killed replica held", lambda: in_flight <= described_after(harness, killed))
    taken = min(c["received"] for c in describes(harness, OTHER) if c["received"] > killed) - killed
    duplicated = duplicated_in_flight(harness, killed)
    record(
        f"2 replicas, one's describes {SLOW_DESCRIBE:.0f} s slow (lease {LEASE_SECONDS} s), then killed (-9)",
        backend=backend(database_url),
        deployments=len(COMMANDS),
        faults=f"{len(describes(harness, SLOW))} describes of {SLOW_DESCRIBE:.0f} s + 1 kill -9",
        duplicated=len(duplicated),  # describes in flight that the other replica repeated
        takeover_after_kill_s=round(taken, 2),
        command="make soak (test_slow_ecs.py)",
    )
    assert duplicated == {}, duplicated  # never a describe of a deployment while another's is on its way
    assert not other.errors(), other.errors()[:3]
