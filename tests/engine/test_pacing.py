"""The reconciler within ECS's describe budget: no deployment starves, quiet ones wait, a decision wakes its own."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.domain.enums import DeploymentStatus
from bot.domain.grammar import parser as grammar
from bot.domain.pacing import Budget
from bot.engine.reconciler import Reconciler
from models import Deployment, utcnow
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()


def deploy(h: Harness, text: str) -> int:
    answer = h.usecases.handle(actor("U0ALICE", "C0DEPLOYS"), grammar.parse(text, CATALOG))
    assert answer.ok and answer.deployment_id is not None, answer.text
    return answer.deployment_id


def budgeted(h: Harness, per_pass: int, sleeps: list[float] | None = None, burst: int = 100) -> Reconciler:
    """A reconciler whose budget allows `per_pass` deployments a pass (one ARN a call, one pass a second)."""
    return Reconciler(
        h.usecases.decisions,
        owner="test",
        interval=timedelta(seconds=1),
        budget=Budget(calls_per_second=per_pass, burst=burst, arns_per_call=1),
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
    )


def due_at(h: Harness, dep: int) -> datetime | None:
    with h.sessions() as session:
        return session.get_one(Deployment, dep).lease_until


def test_past_the_budget_every_deployment_takes_its_turn(harness: Harness) -> None:
    deps = [deploy(harness, "orders"), deploy(harness, "notifications bluegreen"), deploy(harness, "ui bluegreen")]
    reconciler = budgeted(harness, per_pass=2)
    first = reconciler.reconcile_once()
    assert first.claimed == 2 and first.live == 3
    assert [due_at(harness, d) for d in deps].count(None) == 1  # one never described yet
    second = reconciler.reconcile_once()
    assert second.claimed == 2
    assert None not in [due_at(harness, d) for d in deps]  # the third went first this time


def test_a_quiet_deployment_waits_when_the_budget_is_short_and_a_decision_wakes_it(harness: Harness) -> None:
    waiting = deploy(harness, "catalog canary 10%")
    harness.run_until(waiting, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    moving = deploy(harness, "orders")
    reconciler = budgeted(harness, per_pass=1)
    report = reconciler.reconcile_once()  # the new one (never described) goes first
    assert report.stretch == reconciler.budget.max_quiet  # no room left beside the moving one
    reconciler.reconcile_once()  # then the quiet one, released for a minute
    due = due_at(harness, waiting)
    assert due is not None and due > utcnow() + timedelta(seconds=50)
    for _ in range(3):  # meanwhile only the moving one is described
        assert reconciler.reconcile_once().claimed == 1
        assert due_at(harness, waiting) == due
    assert harness.usecases.decisions.approve(actor("U0BOB", source="button"), waiting).ok
    assert due_at(harness, waiting) is None  # due at once: ECS goes on now
    reconciler.reconcile_once()
    assert due_at(harness, waiting) is not None and due_at(harness, moving) is not None


def test_with_room_for_all_nothing_waits(harness: Harness) -> None:
    waiting = deploy(harness, "catalog canary 10%")
    harness.run_until(waiting, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    deploy(harness, "orders")
    report = harness.usecases.reconciler.reconcile_once()
    assert report.claimed == 2 and report.stretch == timedelta(0)
    assert harness.usecases.reconciler.reconcile_once().claimed == 2


def test_a_pass_waits_for_the_budget_instead_of_outrunning_ecs(harness: Harness) -> None:
    deploy(harness, "orders")
    sleeps: list[float] = []
    reconciler = budgeted(harness, per_pass=2, sleeps=sleeps, burst=0)
    reconciler.reconcile_once()
    assert sleeps and 0 < sleeps[0] <= 0.5  # one call at 2 calls/s with nothing in the bucket
