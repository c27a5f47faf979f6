"""Decisions reach ECS exactly once and are recorded as what ECS did, after lost answers, retries and races.

ContinueServiceDeployment has no client token: the sandbox's faults `after=true` apply the call and then lose its
answer (a 5xx, a throttle, or no answer at all), the way a timeout or a botocore resend would meet real ECS.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from bot.engine import reconciler as reconciler_module
from bot.engine.usecases import UseCases
from models import Decision, Deployment
from tests.support import Harness, actor, example_catalog, make_usecases

CATALOG = example_catalog()
CONTINUE = "ContinueServiceDeployment"


def deploy(h: Harness, text: str, usecases: UseCases | None = None) -> int:
    answer = (usecases or h.usecases).handle(actor("U0ALICE"), grammar.parse(text, CATALOG))
    assert answer.ok and answer.deployment_id is not None, answer.text
    return answer.deployment_id


def lose_answers(h: Harness, code: str, rate: float = 1.0) -> None:
    h.control.post("fault", {"operation": CONTINUE, "code": code, "rate": rate, "after": True})


def sends_per_hook(h: Harness) -> Counter[str]:
    return Counter(c["parameters"]["hookId"] for c in h.control.calls(CONTINUE))


def decisions(h: Harness) -> list[Decision]:
    with h.sessions() as session:
        return list(session.scalars(select(Decision).order_by(Decision.id)))


@pytest.mark.parametrize("code", ["ServerException", "Timeout"])
def test_an_approval_whose_answer_was_lost_is_recorded_as_applied_and_sent_once(harness: Harness, code: str) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    lose_answers(harness, code)
    answer = harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
    assert answer.ok and "Approval sent" in answer.text, answer.text  # never "ECS refused"
    assert list(sends_per_hook(harness).values()) == [1]  # no resend, by the gateway or by us
    [decision] = decisions(harness)
    assert decision.applied_at is not None and decision.error is None and decision.lease_owner is None
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
    assert [e.detail["user"] for e in done.events if e.kind is EventKind.DECISION] == ["U0BOB"]
    assert list(sends_per_hook(harness).values()) == [1]


def test_a_rollback_whose_answer_was_lost_is_recorded_as_applied(harness: Harness) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    lose_answers(harness, "Timeout")
    answer = harness.usecases.decisions.rollback(actor("U0CAROL", source="button"), dep)
    assert answer.ok and "Rollback sent" in answer.text, answer.text
    assert list(sends_per_hook(harness).values()) == [1]
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.ROLLED_BACK


def test_a_decision_that_never_reached_ecs_is_retried_once_by_the_reconciler_after_a_describe(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    harness.control.post("fault", {"operation": CONTINUE, "code": "Timeout", "rate": 1})  # lost on the way in
    answer = harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
    assert answer.ok and "ECS is busy" in answer.text
    harness.control.post("fault", {"operation": CONTINUE, "code": "Timeout", "rate": 0})
    [pending] = decisions(harness)
    assert pending.applied_at is None and pending.error is None and pending.lease_owner is None
    monkeypatch.setattr(reconciler_module, "DECISION_RETRY_AFTER", timedelta(0))
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
    calls = harness.control.calls(CONTINUE)
    assert [c["applied"] for c in calls] == [False, True]  # the retry is the only call that reached ECS
    [decision] = decisions(harness)
    assert decision.applied_at is not None and decision.error is None


def test_the_reconciler_leaves_alone_a_decision_the_click_path_holds(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    monkeypatch.setattr(reconciler_module, "DECISION_RETRY_AFTER", timedelta(0))
    held = threading.Event()
    release = threading.Event()
    applier = harness.usecases.decisions.applier
    real_call = applier._call

    def slow_call(sending: Any) -> None:  # the click path is still sending when the reconciler passes
        held.set()
        release.wait(timeout=30)
        real_call(sending)

    monkeypatch.setattr(applier, "_call", slow_call)
    click = threading.Thread(target=harness.usecases.decisions.approve, args=(actor("U0BOB", source="button"), dep))
    click.start()
    assert held.wait(timeout=30)
    other = make_usecases(harness.sessions, harness.control.url, CATALOG)  # another replica's reconciler
    other.reconciler.owner = "replica-b"
    other.reconciler.reconcile_once()
    release.set()
    click.join(timeout=30)
    assert list(sends_per_hook(harness).values()) == [1]
    [decision] = decisions(harness)
    assert decision.applied_at is not None and decision.error is None


def test_one_bad_deployment_does_not_stop_the_pass_and_every_lease_is_released(harness: Harness) -> None:
    bad, good = deploy(harness, "orders"), deploy(harness, "notifications bluegreen image=:3.5.0")
    with harness.sessions.begin() as session:
        row = session.get_one(Deployment, bad)
        row.tracked = {**row.tracked, "strategy": "NOT-A-STRATEGY"}  # the machine cannot read this row
    report = harness.usecases.reconciler.reconcile_once()
    assert any(f"#{bad}" in e for e in report.errors)
    done = harness.run_until(good, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
    with harness.sessions() as session:
        assert session.get_one(Deployment, bad).lease_owner is None  # the next pass (any replica) may take it


def test_two_replicas_racing_click_and_reconciler_send_each_decision_once(
    harness: Harness, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.db.sessions import make_engine, session_factory

    if not database_url.startswith("postgresql"):
        pytest.skip("two replicas share one PostgreSQL")
    monkeypatch.setattr(reconciler_module, "DECISION_RETRY_AFTER", timedelta(0))  # the reconciler retries at once
    lose_answers(harness, "ServerException")  # every approval lands and its answer is lost
    harness.control.post("fault", {"operation": "DescribeServiceDeployments", "code": "Timeout", "rate": 0.3})
    engines = [make_engine(database_url) for _ in range(2)]
    replicas = [make_usecases(session_factory(e), harness.control.url, CATALOG) for e in engines]
    for index, replica in enumerate(replicas):
        replica.reconciler.owner = f"replica-{index}"
        replica.reconciler.backoff = timedelta(0)  # a lost describe is retried at the next pass
    deps = [deploy(harness, "catalog canary 10%", replicas[0]), deploy(harness, "ui bluegreen", replicas[1])]
    stop = threading.Event()
    failures: list[BaseException] = []

    def reconcile(replica: UseCases) -> None:
        while not stop.is_set():
            try:
                replica.reconciler.reconcile_once()
            except BaseException as exc:
                failures.append(exc)
                return

    def click() -> None:  # approvals arrive on either replica, as soon as a pause waits
        turn = 0
        while not stop.is_set():
            for dep in deps:
                view = replicas[turn % 2].deployments.view(dep)
                if view and view.awaiting and not view.decision_for(view.awaiting[0].hook_id):
                    replicas[turn % 2].decisions.approve(actor("U0BOB", source="button"), dep)
                turn += 1
            stop.wait(0.01)

    threads = [threading.Thread(target=reconcile, args=(r,)) for r in replicas] + [threading.Thread(target=click)]
    for t in threads:
        t.start()
    try:
        for _ in range(3000):  # ECS time moves on while both replicas and the clicker run
            views = [harness.view(d) for d in deps]
            if not any(v.is_active for v in views):
                break
            if not any(v.status is DeploymentStatus.AWAITING_APPROVAL for v in views):
                harness.control.advance(10)  # a pause stays until its approval is in: no timeout in this test
            stop.wait(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        for e in engines:
            e.dispose()
    assert failures == []
    views = [harness.view(d) for d in deps]
    assert [v.status for v in views] == [DeploymentStatus.SUCCEEDED] * 2, [(v.status, v.awaiting) for v in views]
    sent = sends_per_hook(harness)
    assert len(sent) == 3 and set(sent.values()) == {1}, sent  # canary 2 pauses + ui 1: each reached ECS once
    stored = decisions(harness)
    assert len(stored) == 3 and all(d.applied_at is not None and d.error is None for d in stored)
