"""End to end over real loopback HTTP: the Slack stand-in signs and POSTs to the bot's server, which drives the
ECS sandbox; on SQLite and PostgreSQL. Time is driven with the ECS sandbox at speed 0, and the scheduler's two
jobs (reconcile, drain the outbox) are run synchronously by the test so every step is deterministic."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select

from bot.domain.enums import DeploymentStatus, EventKind, LifecycleStage
from bot.slack.blocks import APPROVE_ACTION, ROLLBACK_ACTION
from models import Decision, Deployment, DeploymentEvent
from sandbox.slack.delivery import sign
from tests.e2e_support import World, awaiting, check_message, http_json, wait_for


def buttons(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """action_id → button element of a message."""
    return {e["action_id"]: e for b in message.get("blocks") or [] if b.get("type") == "actions" for e in b["elements"]}


def deploy_canary(w: World) -> int:
    answer = w.command("U0ALICE", "catalog canary 10%")
    assert answer["status"] == 200 and answer["shown"] is None  # the answer is the first thing shown
    dep = w.started()
    w.ephemeral_with("U0ALICE", f"Deployment #{dep} of `catalog` is starting")
    return dep


def test_canary_with_four_eyes_approvals_succeeds(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    first = w.run_until(dep, awaiting)
    root = w.root(dep)
    assert set(buttons(root)) == {APPROVE_ACTION, ROLLBACK_ACTION}

    # The requester (not an approver either) may not approve: refused, rule named, message unchanged, audited.
    w.click("U0ALICE", root["ts"], APPROVE_ACTION)
    w.ephemeral_with("U0ALICE", "rule `not_approver`")
    assert w.root(dep)["blocks"] == root["blocks"]
    with w.ctx.sessions() as session:
        refusal = session.scalars(select(DeploymentEvent).where(DeploymentEvent.kind == EventKind.REFUSED)).one()
    assert (refusal.actor, refusal.detail["rule"], refusal.detail["source"]) == ("U0ALICE", "not_approver", "button")
    assert w.ecs.calls("ContinueServiceDeployment") == []

    # Bob approves before each production step (the canary's 10 %, then the rest).
    w.click("U0BOB", root["ts"], APPROVE_ACTION)
    w.ephemeral_with("U0BOB", "Approval sent")
    w.run_until(dep, lambda v: awaiting(v) and v.awaiting[0].hook_id != first.awaiting[0].hook_id)
    w.click("U0BOB", w.root(dep)["ts"], APPROVE_ACTION)
    w.told("U0BOB", "Approval sent", 2)  # the decision is applied before the next reconcile pass
    done = w.run_until(dep, lambda v: not v.is_active)
    w.drain()

    assert done.status is DeploymentStatus.SUCCEEDED
    assert len(w.ecs.calls("ContinueServiceDeployment")) == 2
    final = w.root(dep)
    assert "Succeeded" in final["text"] or "succeeded" in final["text"].lower()
    assert APPROVE_ACTION not in buttons(final) and ROLLBACK_ACTION not in buttons(final)
    thread = w.thread(dep)
    for message in [final, *thread]:
        check_message(message)
    # The narrative (docs/ARCHITECTURE.md, "The thread"): a start, each approval asked and given with its step, the
    # final bake and the outcome; the stages only change the root message.
    lines = [m["blocks"][0]["text"]["text"] for m in thread]
    assert len(lines) <= 10, lines
    assert [line.split(" (")[0].split(" —")[0] for line in lines if line.startswith(("✋", "✅ <@"))] == [
        "✋ Approval needed before production step 1 of 2",
        "✅ <@U0BOB> approved production step 1 of 2",
        "✋ Approval needed before production step 2 of 2",
        "✅ <@U0BOB> approved production step 2 of 2",
    ]
    assert lines[0].startswith("▶️ ECS started deploying *catalog*") and "succeeded in" in lines[-1]
    # The requester is mentioned in the last reply, so their phone buzzes when it is done.
    assert lines[-1].endswith("· cc <@U0ALICE>") and "<@U0ALICE>" in thread[-1]["text"]
    assert any("<!subteam^S0APPROVERS>" in m["text"] or "S0APPROVERS" in str(m.get("blocks")) for m in thread)


def test_roll_back_during_bake(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    w.run_until(dep, awaiting)
    w.click("U0BOB", w.root(dep)["ts"], APPROVE_ACTION)
    w.told("U0BOB", "Approval sent")
    w.run_until(dep, lambda v: awaiting(v) and v.decision_for(v.awaiting[0].hook_id) is None)
    w.click("U0BOB", w.root(dep)["ts"], APPROVE_ACTION)
    w.told("U0BOB", "Approval sent", 2)
    w.run_until(dep, lambda v: v.lifecycle_stage is LifecycleStage.BAKE_TIME)
    w.click("U0CAROL", w.root(dep)["ts"], ROLLBACK_ACTION)
    w.ephemeral_with("U0CAROL", "Rollback sent")
    done = w.run_until(dep, lambda v: not v.is_active)
    w.drain()
    assert done.status is DeploymentStatus.ROLLED_BACK
    assert done.ecs_status is not None and done.ecs_status.value == "ROLLBACK_SUCCESSFUL"
    root = w.root(dep)
    check_message(root)
    assert "rolled back" in root["text"].lower()
    assert len(w.ecs.calls("StopServiceDeployment")) == 1


def test_rollback_command_from_the_incident_channel(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    w.run_until(dep, awaiting)
    answer = w.command("U0CAROL", "rollback catalog checkout errors <!channel> & more", channel="C0INC42")
    assert answer["status"] == 200
    public = wait_for(
        lambda: next((m for m in w.messages("C0INC42") if "Rollback" in m["text"]), None),
        what="the rollback answer in #incident-42",
    )
    check_message(public)
    done = w.run_until(dep, lambda v: not v.is_active)
    w.drain()
    assert done.status is DeploymentStatus.ROLLED_BACK
    xpost = [m for m in w.thread(dep) if "<#C0INC42>" in m["text"]]
    assert len(xpost) == 1
    assert "<!channel>" not in xpost[0]["text"] and "&lt;!channel&gt;" in xpost[0]["text"]
    # The thread's last reply names who rolled it back and mentions the requester; the incident channel, where the
    # rollback was asked for, hears how it ended, once, after the answer.
    last = w.thread(dep)[-1]["blocks"][0]["text"]["text"]
    assert "rolled back" in last and "requested by <@U0CAROL>" in last and last.endswith("· cc <@U0ALICE>")
    incident = [m["text"] for m in w.messages("C0INC42")]
    assert len(incident) == 2 and incident[0] == public["text"], incident
    assert incident[1].startswith("⏪ *catalog* rolled back") and "requested by <@U0CAROL>" in incident[1]
    assert incident[1].endswith("· back on `1.2.1`"), incident[1]
    check_message(w.messages("C0INC42")[1])


def test_an_alarm_rollback_is_announced_and_closed_in_the_incident_channel(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    w.run_until(dep, awaiting)
    w.click("U0BOB", w.root(dep)["ts"], APPROVE_ACTION)
    w.told("U0BOB", "Approval sent")
    w.run_until(dep, lambda v: (v.production_weight or 0) > 0)
    w.ecs.post("alarm", {"name": "catalog-5xx", "state": "ALARM"})
    done = w.run_until(dep, lambda v: not v.is_active)
    w.drain()
    assert done.status is DeploymentStatus.ROLLED_BACK
    incident = [m["text"] for m in w.messages("C0INC42")]
    assert len(incident) == 2, incident
    assert incident[0] == "🚨 *catalog* is rolling back automatically: CloudWatch alarm `catalog-5xx` went off"
    assert incident[1].startswith("⏪ *catalog* rolled back after ")
    assert incident[1].endswith(": CloudWatch alarm `catalog-5xx` went off · back on `1.2.1`")
    assert "Open the deployment thread" in str(w.messages("C0INC42")[1]["blocks"])
    last = w.thread(dep)[-1]["blocks"][0]["text"]["text"]
    assert "CloudWatch alarm `catalog-5xx`" in last and last.endswith("· cc <@U0ALICE>")


def test_forged_and_stale_signatures_are_refused(world: World) -> None:
    w = world
    url = f"{w.bot.url}/slack/events"
    body = urlencode(
        {
            "command": "/deploy",
            "text": "catalog canary 10%",
            "user_id": "U0ALICE",
            "channel_id": "C0DEPLOYS",
            "team_id": "T0UNICORN",
            "trigger_id": "x",
            "response_url": f"{w.slack.url}/_sandbox/response/nope",
        }
    ).encode()
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    forged = sign("not-the-secret", body)
    stale = sign("sandbox-signing-secret", body, int(time.time()) - 600)
    for headers in (forged, stale, {}):
        status, _ = http_json(url, raw=body, headers={**form, **headers})
        assert status == 401
    time.sleep(0.2)
    with w.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 0
    assert w.ecs.calls("UpdateService") == [] and w.ecs.calls("DescribeServices") == []


def test_double_click_reaches_ecs_once_and_the_second_is_told(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    w.run_until(dep, awaiting)
    ts = w.root(dep)["ts"]
    w.click("U0BOB", ts, APPROVE_ACTION)
    w.click("U0BOB", ts, APPROVE_ACTION)
    w.ephemeral_with("U0BOB", "Already approved by <@U0BOB> at")
    # The second click can be answered before the first one's worker has reached ECS: wait for that call.
    wait_for(lambda: w.ecs.calls("ContinueServiceDeployment"), what="the first click's ContinueServiceDeployment")
    w.drain()
    assert len(w.ecs.calls("ContinueServiceDeployment")) == 1


def test_tampered_unknown_and_finished_buttons_do_nothing(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    w.run_until(dep, awaiting)
    ts = w.root(dep)["ts"]
    w.click("U0BOB", ts, APPROVE_ACTION, value=f"{dep}|../../etc")
    w.click("U0BOB", ts, APPROVE_ACTION, block_id=f"dep-{dep + 1}-v1")
    w.click("U0BOB", ts, ROLLBACK_ACTION, value="999|-", block_id="dep-999-v1")
    wait_for(
        lambda: len([m for m in w.ephemerals("U0BOB") if "did nothing" in m["text"]]) >= 3, what="three explanations"
    )
    assert w.ecs.calls("ContinueServiceDeployment") == [] and w.ecs.calls("StopServiceDeployment") == []
    # A stale Home tab still shows Roll back after the deployment ended: the click explains, ECS hears nothing.
    w.control("app_home_opened", {"user": "U0BOB"})
    home = wait_for(lambda: w.snapshot()["views"]["U0BOB"]["home"], what="Bob's Home tab")
    w.command("U0CAROL", "rollback catalog")
    wait_for(lambda: any("Rollback sent" in m["text"] for m in w.messages()), what="the public rollback answer")
    done = w.run_until(dep, lambda v: not v.is_active)
    w.control("click", {"user": "U0BOB", "view_id": home["id"], "action_id": ROLLBACK_ACTION})
    wait_for(
        lambda: next((m for m in w.messages("D0BOB") if "Already rolled back by <@U0CAROL>" in m["text"]), None),
        what="the explanation in Bob's DM",
    )
    assert done.status is DeploymentStatus.ROLLED_BACK
    assert len(w.ecs.calls("StopServiceDeployment")) + len(w.ecs.calls("ContinueServiceDeployment")) == 1


def test_unauthorized_deploy_is_refused_with_its_rule(world: World) -> None:
    w = world
    w.command("U0DAVE", "catalog canary 10%")
    w.ephemeral_with("U0DAVE", "rule `not_deployer`")
    w.command("U0ALICE", "catalog canary 10%", channel="D0ALICE")
    w.ephemeral_with("U0ALICE", "rule `channel_not_allowed`")
    with w.ctx.sessions() as session:
        rules = sorted(e.detail["rule"] for e in session.scalars(select(DeploymentEvent)))
        assert session.scalar(select(func.count()).select_from(Deployment)) == 0
    assert rules == ["channel_not_allowed", "not_deployer"]


def test_grammar_error_is_answered_in_the_ack(world: World) -> None:
    answer = world.command("U0ALICE", "catalgo canary 10%")
    assert "Did you mean `catalog`" in answer["shown"]["text"]
    assert world.ecs.calls("DescribeServices") == []


def test_modal_path(world: World) -> None:
    w = world
    assert w.command("U0ALICE", "")["status"] == 200
    modal = wait_for(lambda: w.snapshot()["views"]["U0ALICE"]["modals"], what="the deploy modal")[0]
    values = {"service": "catalog", "strategy": "canary", "percent": "150", "reason": "search <!here>"}
    bad = w.control("submit_view", {"user": "U0ALICE", "view_id": modal["id"], "values": values})
    assert bad["outcome"] == "errors" and set(bad["json"]["errors"]) == {"percent"}
    assert "out of range" in bad["json"]["errors"]["percent"]
    good = w.control("submit_view", {"user": "U0ALICE", "view_id": modal["id"], "values": {**values, "percent": "20"}})
    assert good["outcome"] == "closed"
    dep = w.started()
    w.ephemeral_with("U0ALICE", f"Deployment #{dep} of `catalog` is starting")
    view = w.view(dep)
    assert (view.canary_percent, view.reason, view.channel_id) == (20.0, "search <!here>", "C0DEPLOYS")
    w.run_until(dep, awaiting)
    root = w.root(dep)
    assert "<!here>" not in str(root)


def test_app_home_lists_active_deployments_with_buttons(world: World) -> None:
    w = world
    dep = deploy_canary(w)
    w.run_until(dep, awaiting)
    w.control("app_home_opened", {"user": "U0BOB"})
    home = wait_for(lambda: w.snapshot()["views"]["U0BOB"]["home"], what="Bob's Home tab")
    approve = next(
        e
        for b in home["blocks"]
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == APPROVE_ACTION
    )
    assert approve["value"].startswith(f"{dep}|")
    w.control("click", {"user": "U0BOB", "view_id": home["id"], "action_id": APPROVE_ACTION})
    wait_for(lambda: w.ecs.calls("ContinueServiceDeployment"), what="the approval from the Home tab")
    with w.ctx.sessions() as session:
        assert session.scalars(select(Decision.source).where(Decision.deployment_id == dep)).all() == ["app_home"]
    wait_for(lambda: len(w.calls("views.publish")) >= 2, what="the Home tab re-rendered after the click")
