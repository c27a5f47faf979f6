"""A decision's lease ends with the process that holds it (issue 13, item 2).

The click path records a decision with a lease (5 minutes) and sends it. A process killed in between must not leave
the approval waiting for that lease: the survivor's next pass takes the decision over, asks ECS whether it took it,
and sends it only if not — once. The holder is a real child process on the same database, killed with SIGKILL.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.enums import DeploymentStatus
from bot.domain.grammar import parser as grammar
from bot.engine import applying
from bot.engine import reconciler as reconciler_module
from models import Decision, Deployment
from models.base import utcnow
from tests.support import Harness, actor, example_catalog, make_usecases

ROOT = Path(__file__).resolve().parents[2]
CATALOG = example_catalog()
CONTINUE = "ContinueServiceDeployment"

# Records Bob's approval the way the click path does (decision row + lease), then stops before sending it.
CHILD = """
import sys, time
from bot.db.sessions import make_engine, session_factory
from bot.domain.enums import DecisionKind
from tests.support import actor, example_catalog, make_usecases
url, ecs_url, dep = sys.argv[1], sys.argv[2], int(sys.argv[3])
decisions = make_usecases(session_factory(make_engine(url)), ecs_url, example_catalog(), owner="replica-a").decisions
view = decisions.d.view(dep)
owner = decisions._record(actor("U0BOB", source="button"), view, view.awaiting[0].hook_id, DecisionKind.APPROVE, None)
print("claimed", owner, flush=True)
time.sleep(120)
"""


def _awaiting(h: Harness) -> int:
    answer = h.usecases.handle(actor("U0ALICE"), grammar.parse("ui bluegreen image=:1.3.0", CATALOG))
    assert answer.ok and answer.deployment_id is not None, answer.text
    h.run_until(answer.deployment_id, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    return answer.deployment_id


def run_child(database_url: str, h: Harness, script: str, *args: str) -> str:
    """Run `script` in a process on the same database until it prints its line, then SIGKILL it."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, database_url, h.control.url, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)  # no handler runs: whatever it held is left as it was
    proc.wait(timeout=30)
    return line


def _claimed_then_killed(database_url: str, h: Harness, dep: int) -> str:
    """A child process records the decision under its lease and is killed before it is settled."""
    line = run_child(database_url, h, CHILD, str(dep))
    assert line.startswith("claimed replica-a/click:"), line
    return line.split()[1]


def _decision(h: Harness) -> Decision:
    with h.sessions() as session:
        return session.scalars(select(Decision)).one()


def survivor_passes(h: Harness, done: object) -> None:
    """The survivor's passes, until `done` holds (PostgreSQL drops a dead session's advisory lock within moments)."""
    survivor = make_usecases(h.sessions, h.control.url, CATALOG, owner="survivor").reconciler
    deadline = time.monotonic() + 20
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the survivor never took the dead process's decision over"
        survivor.reconcile_once()
        time.sleep(0.05)


def test_a_decision_whose_owner_was_killed_before_sending_is_sent_once_by_the_survivor(
    harness: Harness, database_url: str
) -> None:
    dep = _awaiting(harness)
    owner = _claimed_then_killed(database_url, harness, dep)
    held = _decision(harness)
    assert held.lease_owner == owner and held.applied_at is None  # its 5-minute lease runs on
    survivor_passes(harness, lambda: harness.control.calls(CONTINUE))  # at once, not in 5 minutes
    settled = _decision(harness)
    assert settled.applied_at is not None and settled.error is None and settled.lease_owner is None
    assert len(harness.control.calls(CONTINUE)) == 1


def test_a_decision_whose_owner_was_killed_after_ecs_took_it_is_recorded_not_sent_again(
    harness: Harness, database_url: str
) -> None:
    dep = _awaiting(harness)
    owner = _claimed_then_killed(database_url, harness, dep)
    view = harness.view(dep)
    assert view.ecs_deployment_arn is not None and _decision(harness).lease_owner == owner
    # The child's call reached ECS, its answer never came back (the kill): ECS has the approval.
    harness.usecases.deployments.ecs.continue_hook(
        view.region, None, view.ecs_deployment_arn, view.awaiting[0].hook_id, "CONTINUE"
    )
    survivor_passes(harness, lambda: _decision(harness).applied_at is not None)
    assert len(harness.control.calls(CONTINUE)) == 1  # described first: never sent twice
    assert _decision(harness).error is None


def test_a_send_slower_than_its_lease_keeps_it_and_reaches_ecs_once(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = _awaiting(harness)
    monkeypatch.setattr(applying, "DECISION_LEASE", timedelta(seconds=1))  # renewed every third of a second
    monkeypatch.setattr(reconciler_module, "DECISION_RETRY_AFTER", timedelta(0))
    applier = harness.usecases.decisions.applier
    real_call, started = applier._call, threading.Event()

    def slow_call(sending: Any) -> None:  # ECS takes 3 leases to answer
        started.set()
        time.sleep(3)
        real_call(sending)

    monkeypatch.setattr(applier, "_call", slow_call)
    click = threading.Thread(target=harness.usecases.decisions.approve, args=(actor("U0BOB", source="button"), dep))
    click.start()
    assert started.wait(timeout=30)
    other = make_usecases(harness.sessions, harness.control.url, CATALOG, owner="replica-b").reconciler
    while click.is_alive():  # another replica's passes, all through the slow call
        other.reconcile_once()
        time.sleep(0.1)
    assert len(harness.control.calls(CONTINUE)) == 1
    settled = _decision(harness)
    assert settled.applied_at is not None and settled.error is None and settled.lease_owner is None


def test_a_decision_ecs_was_too_busy_for_goes_again_within_the_time_the_person_was_told(harness: Harness) -> None:
    dep = _awaiting(harness)
    with harness.sessions.begin() as session:  # quiet, and not due for an hour (a stretched pass over many)
        session.get_one(Deployment, dep).lease_until = utcnow() + timedelta(hours=1)
    harness.control.post("fault", {"operation": CONTINUE, "code": "ThrottlingException", "rate": 1})
    answer = harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
    harness.control.post("fault", {"operation": CONTINUE, "code": "ThrottlingException", "rate": 0})
    told = re.search(r"ECS is busy, so I'll send it again within (\d+)s\.", answer.text)
    assert answer.ok and told, answer.text
    calls = len(harness.control.calls(CONTINUE))
    harness.usecases.reconciler.reconcile_once()  # at once: ECS is given a few seconds
    assert len(harness.control.calls(CONTINUE)) == calls
    later = utcnow() + timedelta(seconds=int(told.group(1)))
    make_usecases(harness.sessions, harness.control.url, CATALOG, clock=lambda: later).reconciler.reconcile_once()
    assert len(harness.control.calls(CONTINUE)) == calls + 1
    settled = _decision(harness)
    assert settled.applied_at is not None and settled.error is None
