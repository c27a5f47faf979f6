"""The deployment engine against the ECS sandbox over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.domain.enums import DecisionKind, DeploymentStatus, EventKind, LifecycleStage, Telling
from bot.domain.grammar import parser as grammar
from bot.domain.readmodels import DeploymentView
from bot.domain.telling import telling
from bot.engine.reconciler import Reconciler
from models import Decision, Deployment, DeploymentEvent, Outbox
from tests.e2e_support import wait_for
from tests.support import Harness, actor, example_catalog, make_usecases

CATALOG = example_catalog()


def deploy(h: Harness, text: str, user: str = "U0ALICE", channel: str = "C0DEPLOYS") -> int:
    answer = h.usecases.handle(actor(user, channel), grammar.parse(text, CATALOG))
    assert answer.ok, answer.text
    assert answer.deployment_id is not None
    return answer.deployment_id


def kinds(view: DeploymentView, kind: EventKind) -> list[dict[str, Any]]:
    return [dict(e.detail) for e in view.events if e.kind is kind]


def awaiting(view: DeploymentView) -> bool:
    return view.status is DeploymentStatus.AWAITING_APPROVAL


def expire_lease(h: Harness, dep: int) -> None:
    """Let time pass until a lease (or a back-off) has run out."""
    with h.sessions.begin() as session:
        session.get_one(Deployment, dep).lease_until = None


def approve_until_done(h: Harness, dep: int, approver: str = "U0BOB") -> DeploymentView:
    """Approve every pause as it comes, until the deployment ends."""
    while True:
        view = h.run_until(dep, lambda v: awaiting(v) or not v.is_active)
        if not view.is_active:
            return view
        assert h.usecases.decisions.approve(actor(approver, source="button"), dep).ok


def test_canary_with_two_approvals_succeeds_and_records_everything(harness: Harness) -> None:
    dep = deploy(harness, 'catalog canary 10% image=:1.3.0 reason="new search"')
    first = harness.run_until(dep, awaiting)
    assert harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep).ok
    harness.run_until(dep, lambda v: awaiting(v) and v.awaiting[0].hook_id != first.awaiting[0].hook_id)
    assert harness.usecases.handle(actor("U0CAROL"), grammar.parse("approve catalog", CATALOG)).ok
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
    assert done.image_to and done.image_to.endswith("retail-store-sample-catalog:1.3.0")
    steps = [
        (d["production_weight"], d.get("step"), d.get("steps"))
        for d in kinds(done, EventKind.TRAFFIC_MOVED)
        if d.get("steps")
    ]
    assert steps == [(10.0, 1, 2), (100.0, 2, 2)]
    seen = {e.stage for e in done.events if e.kind in (EventKind.STAGE_ENTERED, EventKind.STAGE_PASSED)}
    assert {s.value for s in LifecycleStage} - {"RECONCILE_SERVICE"} <= seen
    assert [d["user"] for d in kinds(done, EventKind.DECISION)] == ["U0BOB", "U0CAROL"]
    assert len(kinds(done, EventKind.HOOK_AWAITING)) == 2
    assert kinds(done, EventKind.FINISHED)[0]["outcome"] == "SUCCEEDED"


def test_four_eyes_refuses_the_requester_and_records_the_refusal(harness: Harness) -> None:
    dep = deploy(harness, "catalog canary 10%", user="U0BOB")
    harness.run_until(dep, awaiting)
    answer = harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
    assert not answer.ok and answer.rule == "four_eyes"
    with harness.sessions() as session:
        refusal = session.scalars(select(DeploymentEvent).where(DeploymentEvent.kind == EventKind.REFUSED)).one()
    assert (refusal.actor, refusal.detail["action"], refusal.detail["rule"]) == ("U0BOB", "approve", "four_eyes")
    assert harness.control.calls("ContinueServiceDeployment") == []


def test_blue_green_rolled_back_during_bake(harness: Harness) -> None:
    dep = deploy(harness, "notifications bluegreen image=:3.5.0")
    harness.run_until(dep, lambda v: v.lifecycle_stage is LifecycleStage.BAKE_TIME)
    answer = harness.usecases.decisions.rollback(actor("U0CAROL", "C0INC42"), dep, None, "error rate up")
    assert answer.ok, answer.text
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.ROLLED_BACK
    rollback = kinds(done, EventKind.ROLLBACK_STARTED)[0]
    assert (rollback["cause"], rollback["by"]) == ("user", "U0CAROL")
    assert len(harness.control.calls("StopServiceDeployment")) == 1


def test_linear_five_steps_then_rollback_after_success_redeploys_the_previous_revision(harness: Harness) -> None:
    dep = deploy(harness, "catalog linear 20% image=:1.4.0 step-bake=1m")
    done = approve_until_done(harness, dep)
    assert done.status is DeploymentStatus.SUCCEEDED
    steps = [d["step"] for d in kinds(done, EventKind.TRAFFIC_MOVED) if d.get("steps") == 5]
    assert steps == [1, 2, 3, 4, 5]
    answer = harness.usecases.handle(actor("U0CAROL", "C0INC42"), grammar.parse("rollback catalog bad search", CATALOG))
    assert answer.ok and answer.public, answer.text
    undo = harness.view(answer.deployment_id or 0)
    assert undo.rollback_of_id == dep and undo.taskdef_to == done.taskdef_from
    final = harness.run_until(undo.id, lambda v: not v.is_active)
    assert final.status is DeploymentStatus.SUCCEEDED


def test_alarm_rollback_is_recorded_with_the_alarm_name(harness: Harness) -> None:
    dep = deploy(harness, "catalog canary 10%")
    harness.run_until(dep, awaiting)
    assert harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep).ok
    harness.run_until(dep, lambda v: (v.production_weight or 0) > 0)
    harness.control.post("alarm", {"name": "catalog-5xx", "state": "ALARM"})
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.ROLLED_BACK
    rollback = kinds(done, EventKind.ROLLBACK_STARTED)[0]
    assert (rollback["cause"], rollback["alarm_name"]) == ("alarm", "catalog-5xx")
    with harness.sessions() as session:
        incident = session.scalars(select(Outbox).where(Outbox.channel_id == "C0INC42").order_by(Outbox.id)).all()
        told = [session.get_one(DeploymentEvent, o.payload["event_id"]).kind for o in incident]
    # The incident channel hears the rollback begin, and how it ended.
    assert [o.payload["render"] for o in incident] == ["incident", "incident"]
    assert told == [EventKind.ROLLBACK_STARTED, EventKind.FINISHED]


def test_a_rollback_right_after_an_approval_stops_the_deployment(harness: Harness) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, awaiting)
    assert harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep).ok
    # No poll in between: the bot still holds the pause as awaiting, but it has been approved.
    answer = harness.usecases.decisions.rollback(actor("U0CAROL"), dep)
    assert answer.ok, answer.text
    assert len(harness.control.calls("StopServiceDeployment")) == 1
    assert harness.run_until(dep, lambda v: not v.is_active).status is DeploymentStatus.ROLLED_BACK


def test_double_approve_and_approve_racing_rollback_send_each_decision_once(harness: Harness) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    hook = harness.run_until(dep, awaiting).awaiting[0].hook_id
    answers: dict[str, Any] = {}
    calls = {
        "approve 1": lambda: harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep),
        "approve 2": lambda: harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep),
        "rollback": lambda: harness.usecases.decisions.rollback(actor("U0CAROL", source="button"), dep),
    }
    threads = [threading.Thread(target=lambda k=k, c=c: answers.update({k: c()})) for k, c in calls.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # One decision on the pause, whoever won; a rollback that lost to the approval is told so (or, if the approval
    # was already recorded when it looked, stops the deployment instead).
    assert answers["approve 1"].ok + answers["approve 2"].ok <= 1
    assert all("Already" in a.text for a in answers.values() if not a.ok)
    assert len(harness.control.calls("ContinueServiceDeployment")) == 1
    with harness.sessions() as session:
        on_pause = session.scalar(select(func.count()).select_from(Decision).where(Decision.hook_id == hook))
        assert on_pause == 1
    decision = harness.view(dep).decision_for(hook)
    assert decision is not None
    stopped = answers["rollback"].ok and decision.kind is DecisionKind.APPROVE
    assert len(harness.control.calls("StopServiceDeployment")) == (1 if stopped else 0)


def test_a_rollback_during_an_approval_still_on_its_way_stops_after_it(harness: Harness) -> None:
    # The approval is recorded and its ContinueServiceDeployment is on the wire (slow): a rollback in that window used
    # to stop the deployment first, so the approver was told the pause no longer waited.
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    hook = harness.run_until(dep, awaiting).awaiting[0].hook_id
    harness.control.post("latency", {"min": 1, "max": 1, "operations": ["ContinueServiceDeployment"]})
    answers: dict[str, Any] = {}
    approve = actor("U0BOB", source="button")
    approving = threading.Thread(
        target=lambda: answers.update(approve=harness.usecases.decisions.approve(approve, dep))
    )
    approving.start()
    wait_for(lambda: harness.view(dep).decision_for(hook), what="the approval recorded")
    answers["rollback"] = harness.usecases.decisions.rollback(actor("U0CAROL"), dep)
    approving.join()
    assert answers["approve"].ok, answers["approve"].text
    assert answers["rollback"].ok, answers["rollback"].text
    changes = ("ContinueServiceDeployment", "StopServiceDeployment")
    landed = [
        c["operation"] for c in harness.control.get("calls")["calls"] if c["operation"] in changes and c["applied"]
    ]
    assert landed == ["ContinueServiceDeployment", "StopServiceDeployment"]


def test_deploy_is_refused_while_busy_or_locked(harness: Harness) -> None:
    dep = deploy(harness, "orders")
    busy = harness.usecases.handle(actor(), grammar.parse("orders", CATALOG))
    assert not busy.ok and f"#{dep}" in busy.text and "<@U0ALICE>" in busy.text
    harness.run_until(dep, lambda v: not v.is_active)
    assert harness.usecases.handle(actor("U0CAROL"), grammar.parse('lock orders "incident 42"', CATALOG)).ok
    locked = harness.usecases.handle(actor(), grammar.parse("orders", CATALOG))
    assert not locked.ok and "locked by <@U0CAROL>" in locked.text and "incident 42" in locked.text
    assert harness.usecases.handle(actor("U0CAROL"), grammar.parse("unlock orders", CATALOG)).ok
    deploy(harness, "orders")


def test_not_a_deployer_is_refused_and_nothing_starts(harness: Harness) -> None:
    answer = harness.usecases.handle(actor("U0DAVE"), grammar.parse("catalog canary 10%", CATALOG))
    assert not answer.ok and answer.rule == "not_deployer"
    assert harness.control.calls("UpdateService") == []


def test_throttling_delays_and_fails_nothing(harness: Harness) -> None:
    dep = deploy(harness, "orders")
    harness.control.post("fault", {"operation": "DescribeServiceDeployments", "code": "ThrottlingException", "rate": 1})
    report = harness.usecases.reconciler.reconcile_once()
    assert report.delayed == 1
    assert harness.view(dep).status is DeploymentStatus.IN_PROGRESS
    harness.control.post("fault", {"operation": "DescribeServiceDeployments", "code": "ThrottlingException", "rate": 0})
    expire_lease(harness, dep)  # the back-off has passed
    assert harness.run_until(dep, lambda v: not v.is_active).status is DeploymentStatus.SUCCEEDED


def test_a_reconciler_dying_between_describe_and_write_loses_and_duplicates_nothing(harness: Harness) -> None:
    dep = deploy(harness, "notifications bluegreen image=:3.5.0")
    harness.run_until(dep, lambda v: v.lifecycle_stage is LifecycleStage.SCALE_UP)
    harness.control.advance(60)

    def die(*_: Any, **__: Any) -> int:
        raise KeyboardInterrupt("killed between describe and write")

    with pytest.MonkeyPatch.context() as patch, pytest.raises(KeyboardInterrupt):
        patch.setattr(harness.usecases.reconciler, "write_batch", die)
        harness.usecases.reconciler.reconcile_once()
    # "After restart": a new engine on the same database, once the dead one's lease has run out.
    restarted = make_usecases(harness.sessions, harness.control.url, CATALOG)
    restarted.reconciler.lease = harness.usecases.reconciler.lease
    expire_lease(harness, dep)
    fresh = Harness(restarted, harness.control, harness.sessions)
    done = fresh.run_until(dep, lambda v: not v.is_active)
    keys = [e.key for e in done.events]
    assert len(keys) == len(set(keys))
    assert "stage:POST_SCALE_UP" in keys or "stage-passed:POST_SCALE_UP" in keys
    assert done.status is DeploymentStatus.SUCCEEDED


def test_two_reconcilers_share_the_work_and_store_each_event_once(harness: Harness, database_url: str) -> None:
    from bot.db.sessions import make_engine as make_db
    from bot.db.sessions import session_factory

    deps = [deploy(harness, "orders"), deploy(harness, "notifications bluegreen image=:3.5.0")]
    engines = [make_db(database_url) for _ in range(2)]
    reconcilers = [make_usecases(session_factory(e), harness.control.url, CATALOG).reconciler for e in engines]
    for index, reconciler in enumerate(reconcilers):
        reconciler.owner = f"replica-{index}"
    stop = threading.Event()
    failures: list[BaseException] = []

    def loop(reconciler: Reconciler) -> None:
        while not stop.is_set():
            try:
                reconciler.reconcile_once()
            except BaseException as exc:
                failures.append(exc)
                return

    threads = [threading.Thread(target=loop, args=(r,)) for r in reconcilers]
    for t in threads:
        t.start()
    try:
        for _ in range(400):
            views = [harness.view(d) for d in deps]
            if not any(v.is_active for v in views):
                break
            harness.control.advance(3)
    finally:
        stop.set()
        for t in threads:
            t.join()
        for e in engines:
            e.dispose()
    assert failures == []
    for dep in deps:
        view = harness.view(dep)
        assert view.status is DeploymentStatus.SUCCEEDED
        keys = [e.key for e in view.events]
        assert len(keys) == len(set(keys))
        assert {"accepted", "started", "finished"} <= set(keys)


def test_the_events_the_narrative_tells_get_a_thread_reply_and_the_root_is_posted_first(harness: Harness) -> None:
    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, awaiting)
    harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
    done = harness.run_until(dep, lambda v: not v.is_active)
    with harness.sessions() as session:
        rows = session.scalars(select(Outbox).where(Outbox.deployment_id == dep).order_by(Outbox.id)).all()
    assert rows[0].idempotency_key == f"dep:{dep}:root" and not rows[0].in_thread
    replies = [r.payload["event_id"] for r in rows if r.payload.get("render") == "event"]
    told = {e.id for e in done.events if telling(e.kind, e.detail) is Telling.REPLY}
    assert sorted(replies) == sorted(told) and len(told) < len(done.events)  # once each; stages only in the root
    assert any(r.kind.value == "UPDATE_ROOT" for r in rows)


def test_a_decision_ecs_could_not_take_is_retried_and_never_lost(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.engine import reconciler as reconciler_module

    dep = deploy(harness, "ui bluegreen image=:1.3.0")
    harness.run_until(dep, awaiting)
    harness.control.post("fault", {"operation": "ContinueServiceDeployment", "code": "ThrottlingException", "rate": 1})
    answer = harness.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
    assert answer.ok and "ECS is busy" in answer.text
    harness.control.post("fault", {"operation": "ContinueServiceDeployment", "code": "ThrottlingException", "rate": 0})
    sent = len(harness.control.calls("ContinueServiceDeployment"))
    harness.usecases.reconciler.reconcile_once()
    # Younger than DECISION_RETRY_AFTER: ECS is given a few seconds before the reconciler sends it again.
    assert len(harness.control.calls("ContinueServiceDeployment")) == sent
    assert harness.view(dep).status is DeploymentStatus.AWAITING_APPROVAL
    monkeypatch.setattr(reconciler_module, "DECISION_RETRY_AFTER", timedelta(0))
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
    assert [d["user"] for d in kinds(done, EventKind.DECISION)] == ["U0BOB"]
