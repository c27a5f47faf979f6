"""A reconcile pass keeps its deployments while it works, however slow ECS is, and no longer (issue 13, item 2).

Its leases are renewed every third of a lease while it runs, so another replica never takes over a deployment
whose describe is in flight; past a lease's time it starts nothing new (the rest is handed back due at once); and
renewal stops after `renewal.MAX_HOLD`, so a stuck pass loses its claims.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import select

from bot.db.renewal import Renewal
from bot.domain.grammar import parser as grammar
from bot.ecs.gateway import chunks
from bot.engine import reconciler as reconciler_module
from bot.engine.reconciler import PassReport, Reconciler
from models import Deployment, utcnow
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()
LEASE = timedelta(seconds=1)


def deploy(h: Harness, text: str) -> int:
    answer = h.usecases.handle(actor("U0ALICE", "C0DEPLOYS"), grammar.parse(text, CATALOG))
    assert answer.ok and answer.deployment_id is not None, answer.text
    return answer.deployment_id


def reconciler(h: Harness, owner: str) -> Reconciler:
    return Reconciler(h.usecases.decisions, owner=owner, lease=LEASE)


def leases(h: Harness) -> dict[int, tuple[str | None, object]]:
    with h.sessions() as session:
        return {
            i: (o, u)
            for i, o, u in session.execute(select(Deployment.id, Deployment.lease_owner, Deployment.lease_until))
        }


def test_a_describe_slower_than_the_lease_keeps_its_deployments_from_another_replica(harness: Harness) -> None:
    deps = [deploy(harness, "orders"), deploy(harness, "notifications bluegreen")]
    harness.control.post("latency", {"min": 6, "max": 6, "operations": ["DescribeServiceDeployments"]})
    slow, other = reconciler(harness, "replica-a"), reconciler(harness, "replica-b")
    reports: list[PassReport] = []
    worker = threading.Thread(target=lambda: reports.append(slow.reconcile_once()))
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while {o for o, _ in leases(harness).values()} != {"replica-a"}:
            assert time.monotonic() < deadline, "the slow replica never claimed"
            time.sleep(0.02)
        claimed_until = max(u for _, u in leases(harness).values())  # type: ignore[type-var]
        while utcnow() < claimed_until + timedelta(seconds=0.3):  # type: ignore[operator]
            time.sleep(0.02)
        # The first lease has run out; its describe (6 s) is still in flight (a margin for a loaded machine).
        assert other.reconcile_once().claimed == 0
    finally:
        worker.join()
    harness.control.post("latency", {"min": 0, "max": 0})
    assert reports[0].described == len(deps)
    assert len(harness.control.calls("DescribeServiceDeployments")) == 1  # one describe, not repeated by B


def test_a_pass_that_has_run_for_a_lease_starts_no_new_batch_and_hands_the_rest_back(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = deploy(harness, "orders"), deploy(harness, "notifications bluegreen")
    monkeypatch.setattr(reconciler_module, "chunks", partial(chunks, size=1))  # one deployment a batch
    harness.control.post("latency", {"min": 1.2, "max": 1.2, "operations": ["DescribeServiceDeployments"]})
    report = reconciler(harness, "replica-a").reconcile_once()
    harness.control.post("latency", {"min": 0, "max": 0})
    assert (report.claimed, report.described, report.handed_back) == (2, 1, 1)
    assert len(harness.control.calls("DescribeServiceDeployments")) == 1
    held = leases(harness)
    undescribed = second if held[first][1] is not None else first
    assert held[undescribed] == (None, None)  # free, due at once: any replica's next pass takes it first
    nxt = reconciler(harness, "replica-b").reconcile_once()
    assert (nxt.claimed, nxt.described) == (2, 2)


def test_renewal_stops_once_it_has_held_for_its_longest() -> None:
    renewed = threading.Semaphore(0)
    with Renewal(renewed.release, every=timedelta(seconds=0.02), hold=timedelta(seconds=0.2)) as renewal:
        assert renewed.acquire(timeout=10)  # it renews while it holds
        deadline = time.monotonic() + 10
        while renewal._thread.is_alive():  # then gives up by itself, before the block ends
            assert time.monotonic() < deadline, "renewal never stopped"
            time.sleep(0.02)
        count = renewal.renewals
        time.sleep(0.1)
        assert renewal.renewals == count
