"""Table-driven tests of the pure Block Kit builders: content, buttons, escaping, limits, modal, App Home."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import (
    ECS_OUTCOMES,
    ActorSource,
    DecisionKind,
    DeploymentStatus,
    EcsStatus,
    EventKind,
    HookStage,
    LifecycleStage,
    Strategy,
    Telling,
    TimeoutAction,
)
from bot.domain.readmodels import AwaitingHook, DecisionView, DeploymentView, EventView, LockView, StatusReport
from bot.domain.telling import telling
from bot.slack.blocks import (
    Message,
    app_home,
    clip,
    deploy_modal,
    ephemeral,
    escape,
    event_message,
    form_values,
    help_message,
    history_message,
    incident_announcement,
    incident_closing,
    modal_errors,
    parse_button_value,
    plain_fallback,
    reminder_message,
    root_message,
    status_message,
    timeout_warning_message,
    traffic_bar,
)
from sandbox.slack.blockkit import check_blocks, check_view

T0 = datetime(2025, 5, 1, 14, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=5)
S = LifecycleStage
SVC = ServiceConfig(
    key="catalog",
    cluster="prod",
    service="catalog",
    region="us-east-1",
    container="app",
    deployers=("U0ALICE",),
    approvers=("S0APPROVERS", "U0BOB"),
    four_eyes=True,
    approval_stages=(HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT,),
    incident_channel="C0INC",
)
HOOK = AwaitingHook("ecs-pause-a", "PRE_PRODUCTION_TRAFFIC_SHIFT", T0 + timedelta(hours=4), "ROLLBACK")
SEEN_TO_PROD = (
    S.PRE_SCALE_UP,
    S.SCALE_UP,
    S.POST_SCALE_UP,
    S.TEST_TRAFFIC_SHIFT,
    S.POST_TEST_TRAFFIC_SHIFT,
    S.PRODUCTION_TRAFFIC_SHIFT,
)
FINISHED = (
    DeploymentStatus.SUCCEEDED,
    DeploymentStatus.ROLLED_BACK,
    DeploymentStatus.ROLLBACK_FAILED,
    DeploymentStatus.FAILED,
    DeploymentStatus.STOPPED,
    DeploymentStatus.SUPERSEDED,
    DeploymentStatus.LOST,
)


def dep(**kw: Any) -> DeploymentView:
    """A canary 10 % of catalog waiting for approval before production step 1 of 2; override anything."""
    values: dict[str, Any] = dict(
        id=42,
        service_key="catalog",
        cluster="prod",
        service="catalog",
        region="us-east-1",
        strategy=Strategy.CANARY,
        canary_percent=10.0,
        linear_step_percent=None,
        canary_bake_seconds=600,
        step_bake_seconds=None,
        bake_seconds=600,
        approval_stages=("PRE_PRODUCTION_TRAFFIC_SHIFT",),
        image_from="123456789012.dkr.ecr.us-east-1.amazonaws.com/catalog:v1",
        image_to="123456789012.dkr.ecr.us-east-1.amazonaws.com/catalog:v2",
        taskdef_from="arn:aws:ecs:us-east-1:123456789012:task-definition/catalog:41",
        taskdef_to="catalog:42",
        ecs_deployment_arn="arn:aws:ecs:us-east-1:123456789012:service-deployment/prod/catalog/abc",
        status=DeploymentStatus.AWAITING_APPROVAL,
        ecs_status=EcsStatus.IN_PROGRESS,
        status_reason=None,
        lifecycle_stage=S.PRODUCTION_TRAFFIC_SHIFT,
        production_weight=0.0,
        test_weight=100.0,
        requested_by="U0ALICE",
        channel_id="C0DEPLOYS",
        root_ts="1714572000.000100",
        reason="new search index",
        rollback_of_id=None,
        created_at=T0,
        started_at=T0,
        finished_at=None,
        version=7,
        stages_seen=SEEN_TO_PROD,
        awaiting=(HOOK,),
    )
    values.update(kw)
    if values["status"] is not DeploymentStatus.AWAITING_APPROVAL and "awaiting" not in kw:
        values["awaiting"] = ()
    if values["status"] in FINISHED and "finished_at" not in kw:
        values["finished_at"] = T0 + timedelta(minutes=55)
    return DeploymentView(**values)


def strategy_kw(strategy: Strategy) -> dict[str, Any]:
    cases: dict[Strategy, dict[str, Any]] = {
        Strategy.ROLLING: dict(
            strategy=Strategy.ROLLING,
            canary_percent=None,
            lifecycle_stage=None,
            stages_seen=(),
            production_weight=None,
            test_weight=None,
            approval_stages=(),
        ),
        Strategy.BLUE_GREEN: dict(strategy=Strategy.BLUE_GREEN, canary_percent=None),
        Strategy.CANARY: {},
        Strategy.LINEAR: dict(strategy=Strategy.LINEAR, canary_percent=None, linear_step_percent=20.0),
    }
    return cases[strategy]


def ev(
    kind: EventKind, detail: dict[str, Any] | None = None, actor: str | None = None, stage: str | None = None
) -> EventView:
    return EventView(1, kind, f"{kind}", stage, detail or {}, actor, T0)


def valid(msg: Message) -> Message:
    """The checks every message must pass: Slack's limits (the stand-in's checker too), text, JSON."""
    assert isinstance(msg, Message)
    assert msg.text.strip()
    check_blocks(msg.blocks)
    encoded = json.dumps(msg.as_kwargs(), ensure_ascii=False)
    assert len(encoded) < 12_500
    return msg


def texts(obj: Any) -> list[str]:
    """Every text string in a block tree."""
    if isinstance(obj, dict):
        out = [obj["text"]] if isinstance(obj.get("text"), str) else []
        return out + [t for k, v in obj.items() if k != "text" or not isinstance(v, str) for t in texts(v)]
    if isinstance(obj, list):
        return [t for item in obj for t in texts(item)]
    return []


def joined(msg: Message | dict[str, Any]) -> str:
    return "\n".join(texts(msg.blocks if isinstance(msg, Message) else msg["blocks"]))


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def actions(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [b for b in blocks if b["type"] == "actions"]


# --- escaping and small pieces ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel> deploy now", "&lt;!channel&gt; deploy now"),
        ("ping <@U0ALICE> & <!subteam^S0X>", "ping &lt;@U0ALICE&gt; &amp; &lt;!subteam^S0X&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("a &amp; b", "a &amp;amp; b"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_escape(raw: str, escaped: str) -> None:
    assert escape(raw) == escaped


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("abcdefghij", 5, "abcd…"),
        ("ab &amp; cd", 6, "ab …"),  # never ends inside an entity
        ("see <@U0ALICE> now", 10, "see …"),  # never ends inside a mention
    ],
)
def test_clip(text: str, limit: int, expected: str) -> None:
    assert clip(text, limit) == expected
    assert len(clip(text, limit)) <= limit


@pytest.mark.parametrize(
    ("green", "bar"),
    [
        (10.0, "blue ▰▰▰▰▰▰▰▰▰▱ 90 % · green 10 %"),
        (0.5, "blue ▰▰▰▰▰▰▰▰▰▰ 99.5 % · green 0.5 %"),
        (0.0, "blue ▰▰▰▰▰▰▰▰▰▰ 100 % · green 0 %"),
        (None, "blue ▰▰▰▰▰▰▰▰▰▰ 100 % · green 0 %"),
        (100.0, "blue ▱▱▱▱▱▱▱▱▱▱ 0 % · green 100 %"),
        (50.0, "blue ▰▰▰▰▰▱▱▱▱▱ 50 % · green 50 %"),
        (33.3, "blue ▰▰▰▰▰▰▰▱▱▱ 66.7 % · green 33.3 %"),
        (5.0, "blue ▰▰▰▰▰▰▰▰▰▱ 95 % · green 5 %"),
        (99.5, "blue ▰▱▱▱▱▱▱▱▱▱ 0.5 % · green 99.5 %"),  # full only when really 100 %
    ],
)
def test_traffic_bar(green: float | None, bar: str) -> None:
    assert traffic_bar(green) == bar


# --- buttons: the contract with the handlers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [("42|ecs-pause-a", (42, "ecs-pause-a")), ("7|-", (7, None)), ("1|a.b:c/d_e-f", (1, "a.b:c/d_e-f"))],
)
def test_parse_button_value(value: str, parsed: tuple[int, str | None]) -> None:
    assert parse_button_value(value) == parsed


@pytest.mark.parametrize(
    "value",
    [
        "",
        "42",
        "42|",
        "|hook",
        "x|hook",
        "-1|hook",
        "0|hook",
        "042|hook",
        "42|hook|extra",
        "42|ho ok",
        "42|<!channel>",
        "4 2|hook",
        "42|-x-" + "a" * 300,
        "1" * 19 + "|h",
        None,
        42,
        b"42|h",
    ],
)
def test_parse_button_value_refuses_tampering(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_button_value(value)


def test_awaiting_root_has_approve_and_rollback_with_confirms() -> None:
    msg = valid(root_message(dep(), SVC, NOW))
    approve, rollback = buttons(msg.blocks)
    assert (approve["action_id"], approve["value"], approve["style"]) == ("deploy_approve", "42|ecs-pause-a", "primary")
    assert (rollback["action_id"], rollback["value"], rollback["style"]) == (
        "deploy_rollback",
        "42|ecs-pause-a",
        "danger",
    )
    assert approve["confirm"]["title"]["text"] and "green 10 %" in approve["confirm"]["text"]["text"]
    assert rollback["confirm"]["style"] == "danger"
    assert rollback["confirm"]["text"]["type"] == "plain_text" and "catalog:41" in rollback["confirm"]["text"]["text"]
    assert actions(msg.blocks)[0]["block_id"] == "dep-42-v7"
    for got in (approve, rollback):
        assert parse_button_value(got["value"]) == (42, "ecs-pause-a")


def test_awaiting_root_says_who_may_approve_and_when_it_times_out() -> None:
    msg = valid(root_message(dep(), SVC, NOW))
    body = joined(msg)
    assert "<!subteam^S0APPROVERS> <@U0BOB> · not the requester" in body
    epoch = int((T0 + timedelta(hours=4)).timestamp())
    # ECS's expiresAt as a date, never "in 3h 55m" measured against the bot's clock.
    assert f"Times out <!date^{epoch}^" in body and "(in " not in body
    assert "catalog rolls back automatically" in body
    assert msg.text == "catalog canary 10 % — waiting for approval before production step 1 of 2 (green 10 %)"


def test_timeout_action_continue_is_said() -> None:
    hook = replace(HOOK, timeout_action="CONTINUE")
    body = joined(root_message(dep(awaiting=(hook,)), SVC, NOW))
    assert "catalog continues automatically without approval" in body


def test_block_id_changes_with_version() -> None:
    ids = {actions(root_message(dep(version=v), SVC, NOW).blocks)[0]["block_id"] for v in (1, 2, 3)}
    assert ids == {"dep-42-v1", "dep-42-v2", "dep-42-v3"}


def test_after_approval_buttons_give_way_to_who_approved() -> None:
    decided = DecisionView("ecs-pause-a", DecisionKind.APPROVE, "U0BOB", ActorSource.BUTTON, T0 + timedelta(minutes=3))
    msg = valid(root_message(dep(decisions=(decided,)), SVC, NOW))
    body = joined(msg)
    assert f"Approved by <@U0BOB> · <!date^{int(decided.decided_at.timestamp())}^{{time}}|" in body
    assert [b["action_id"] for b in buttons(msg.blocks)] == ["deploy_rollback"]
    assert buttons(msg.blocks)[0]["value"] == "42|-"


def test_after_rollback_request_no_buttons() -> None:
    decided = DecisionView(
        "ecs-pause-a", DecisionKind.ROLLBACK, "U0BOB", ActorSource.BUTTON, T0, reason="<!here> p99 up"
    )
    msg = valid(root_message(dep(decisions=(decided,)), SVC, NOW))
    assert buttons(msg.blocks) == []
    assert "Rollback requested by <@U0BOB>" in joined(msg)
    assert "&lt;!here&gt; p99 up" in joined(msg) and "<!here>" not in joined(msg)


def test_second_awaiting_hook_gets_the_buttons_once_the_first_is_decided() -> None:
    second = AwaitingHook("ecs-pause-b", "PRE_PRODUCTION_TRAFFIC_SHIFT", None, None)
    decided = DecisionView("ecs-pause-a", DecisionKind.APPROVE, "U0BOB", ActorSource.BUTTON, T0)
    msg = valid(root_message(dep(awaiting=(HOOK, second), decisions=(decided,)), SVC, NOW))
    assert [b["value"] for b in buttons(msg.blocks)] == ["42|ecs-pause-b", "42|ecs-pause-b"]
    assert "If nobody decides in time → catalog rolls back automatically" in joined(msg)


@pytest.mark.parametrize("strategy", list(Strategy))
@pytest.mark.parametrize("status", list(DeploymentStatus))
def test_root_message_for_every_status_and_strategy(strategy: Strategy, status: DeploymentStatus) -> None:
    view = dep(status=status, **strategy_kw(strategy))
    msg = valid(root_message(view, SVC, NOW))
    header = msg.blocks[0]
    assert header["type"] == "header" and header["text"]["text"].startswith("🚀 catalog · ")
    got = [b["action_id"] for b in buttons(msg.blocks)]
    if status is DeploymentStatus.AWAITING_APPROVAL:
        assert got == ["deploy_approve", "deploy_rollback"]
    elif status is DeploymentStatus.IN_PROGRESS:
        assert got == ["deploy_rollback"]
        assert buttons(msg.blocks)[0]["value"] == "42|-"
    else:
        assert got == []
    body = joined(msg)
    emoji = {
        "REQUESTED": "⏳",
        "IN_PROGRESS": "⏳",
        "AWAITING_APPROVAL": "✋",
        "ROLLING_BACK": "↩️",
        "SUCCEEDED": "✅",
        "ROLLED_BACK": "⏪",
        "ROLLBACK_FAILED": "❌",
        "FAILED": "❌",
        "STOPPED": "⏹",
        "SUPERSEDED": "⏹",
        "LOST": "❔",
    }[status.value]
    assert f"*Status*\n{emoji}" in body
    # A lost deployment's last weights may no longer hold: no bar, only what was last seen.
    assert ("blue ▰" in body) is (strategy is not Strategy.ROLLING and status is not DeploymentStatus.LOST)
    assert "<@U0ALICE>" in body and "`v1` → `v2`" in body and "`catalog:41` → `catalog:42`" in body
    if status in FINISHED:
        assert "history: `/deploy history catalog`" in body
    if status in ECS_OUTCOMES:  # ECS's finish minus ECS's start
        assert "55m" in body and "55m" in msg.text
    elif status is DeploymentStatus.FAILED:  # ECS never ran it: no duration across two clocks
        assert "55m" not in body


@pytest.mark.parametrize(
    ("strategy", "header"),
    [
        (Strategy.ROLLING, "🚀 catalog · rolling"),
        (Strategy.BLUE_GREEN, "🚀 catalog · blue/green"),
        (Strategy.CANARY, "🚀 catalog · canary 10 %"),
        (Strategy.LINEAR, "🚀 catalog · linear 20 %"),
    ],
)
def test_header(strategy: Strategy, header: str) -> None:
    msg = root_message(dep(status=DeploymentStatus.IN_PROGRESS, **strategy_kw(strategy)), SVC, NOW)
    assert msg.blocks[0]["text"]["text"] == header


def test_traffic_bar_and_step_in_root() -> None:
    view = dep(status=DeploymentStatus.IN_PROGRESS, production_weight=10.0, test_weight=100.0)
    body = joined(valid(root_message(view, SVC, NOW)))
    assert "*Production traffic*  blue ▰▰▰▰▰▰▰▰▰▱ 90 % · green 10 %" in body
    assert "*Test traffic*  blue ▱▱▱▱▱▱▱▱▱▱ 0 % · green 100 %" in body
    assert "▶ Production traffic shift  _green 10 % · step 1 of 2 · approval before each step_" in body


def checklist_of(msg: Message) -> list[str]:
    section = next(
        b for b in msg.blocks if b["type"] == "section" and "Scale up green" in b.get("text", {}).get("text", "")
    )
    text: str = section["text"]["text"]
    return text.split("\n")


@pytest.mark.parametrize(
    ("status", "stage", "seen", "marks"),
    [
        (DeploymentStatus.IN_PROGRESS, S.SCALE_UP, (S.PRE_SCALE_UP, S.SCALE_UP), "✓▶·······"),
        (DeploymentStatus.AWAITING_APPROVAL, S.PRODUCTION_TRAFFIC_SHIFT, SEEN_TO_PROD, "✓✓✓✓✓▶···"),
        (DeploymentStatus.SUCCEEDED, S.CLEAN_UP, SEEN_TO_PROD, "✓✓✓✓✓✓✓✓✓"),
        (
            DeploymentStatus.ROLLED_BACK,
            S.BAKE_TIME,
            (*SEEN_TO_PROD, S.POST_PRODUCTION_TRAFFIC_SHIFT, S.BAKE_TIME),
            "✓✓✓✓✓✓✓✗·",
        ),
        (DeploymentStatus.IN_PROGRESS, None, (), "·········"),
        (DeploymentStatus.IN_PROGRESS, S.PRE_SCALE_UP, (S.RECONCILE_SERVICE, S.PRE_SCALE_UP), "✓▶········"),
    ],
)
def test_checklist_marks(status: DeploymentStatus, stage: S | None, seen: tuple[S, ...], marks: str) -> None:
    msg = valid(root_message(dep(status=status, lifecycle_stage=stage, stages_seen=seen), SVC, NOW))
    lines = checklist_of(msg)
    assert "".join(line[0] for line in lines) == marks
    assert lines[0].endswith(("Pre scale-up", "Reconcile service"))


def test_rolling_shows_a_progress_line_instead_of_stages() -> None:
    msg = valid(root_message(dep(status=DeploymentStatus.IN_PROGRESS, **strategy_kw(Strategy.ROLLING)), SVC, NOW))
    body = joined(msg)
    assert "▶ Rolling update: ECS replaces tasks a few at a time" in body
    assert "Scale up green" not in body and "Production traffic" not in body


def test_bake_end_uses_slack_date_while_active() -> None:
    end = T0 + timedelta(minutes=50)
    view = dep(status=DeploymentStatus.IN_PROGRESS, lifecycle_stage=S.BAKE_TIME, bake_until=end)
    body = joined(valid(root_message(view, SVC, NOW)))
    assert f"Bake ends <!date^{int(end.timestamp())}^{{date_short_pretty}} {{time}}|2025-05-01 14:50 UTC>" in body


def test_finished_root_has_outcome_and_no_buttons() -> None:
    view = dep(status=DeploymentStatus.ROLLED_BACK, status_reason="rolled back <!channel>")
    msg = valid(root_message(view, SVC, NOW))
    assert actions(msg.blocks) == []
    body = joined(msg)
    assert "⏪ *Rolled back* after 55m" in body
    assert "ECS: rolled back &lt;!channel&gt;" in body
    assert msg.text == "catalog canary 10 % — rolled back after 55m"


# --- escaping and limits ----------------------------------------------------------------------------------------


def test_reason_cannot_ping_anyone() -> None:
    view = dep(reason="<!channel> <@U0EVE> <!subteam^S0ALL> <https://x.example|y> & more", image_to="evil:<!here>")
    msg = valid(root_message(view, SVC, NOW))
    body = json.dumps(msg.blocks)
    for token in ("<!channel>", "<@U0EVE>", "<!subteam^S0ALL>", "<https://x.example", "<!here>"):
        assert token not in body
    assert "&lt;!channel&gt; &lt;@U0EVE&gt;" in joined(msg)


@pytest.mark.parametrize("field", ["reason", "status_reason", "image_to", "service_key", "requested_by", "cluster"])
def test_five_thousand_characters_still_render(field: str) -> None:
    status = DeploymentStatus.ROLLED_BACK if field == "status_reason" else DeploymentStatus.AWAITING_APPROVAL
    view = dep(status=status, **{field: "<&>" * 1700})
    msg = valid(root_message(view, SVC, NOW))
    assert len(msg.blocks[0]["text"]["text"]) <= 150
    assert all(len(b["text"]["text"]) <= 3000 for b in msg.blocks if b["type"] == "section" and "text" in b)
    for kind in EventKind:
        reply = event_message(
            view, ev(kind, {"reason": "<&>" * 1700, "outcome": "ROLLED_BACK", "cause": "ecs"}), SVC, NOW
        )
        if reply is not None:
            valid(reply)
    valid(
        incident_announcement(
            view,
            ev(EventKind.ROLLBACK_STARTED, {"cause": "ecs", "reason": "x" * 5000}),
            SVC,
            "https://example.slack.com/archives/C0/p1",
        )
    )


def test_many_decisions_stay_within_limits() -> None:
    many = tuple(
        DecisionView(f"h{i}", DecisionKind.APPROVE, "U0BOB", ActorSource.BUTTON, T0, "r" * 900) for i in range(40)
    )
    valid(root_message(dep(decisions=many), SVC, NOW))


# --- thread replies ---------------------------------------------------------------------------------------------

EVENT_CASES: list[tuple[EventView, str | None]] = [
    (ev(EventKind.ACCEPTED), None),
    (ev(EventKind.REFUSED, {"rule": "four_eyes"}, "U0ALICE"), None),
    (ev(EventKind.STARTED, {"arn": "arn:x"}), "▶️ ECS started deploying *catalog*"),
    (
        ev(EventKind.START_FAILED, {"reason": "InvalidParameterException: <bad>"}),
        "❌ ECS refused to start the deployment: InvalidParameterException: &lt;bad&gt;",
    ),
    # Stages, test traffic, traffic going back, our own hook decisions, Lambda hooks, step bakes, a rollback a person
    # asked for, locks: the root message (or the history) tells them, not the thread (bot/domain/telling.py).
    (ev(EventKind.STAGE_ENTERED, {"stage": "SCALE_UP", "previous": "PRE_SCALE_UP"}), None),
    (ev(EventKind.STAGE_PASSED, {"stage": "POST_SCALE_UP"}), None),
    (
        ev(
            EventKind.TRAFFIC_MOVED,
            {"direction": "fwd", "test_weight": 100.0, "production_weight": 10.0, "step": 1, "steps": 2},
        ),
        "🔀 Production traffic → green 10 % (step 1 of 2)",
    ),
    (
        ev(
            EventKind.TRAFFIC_MOVED,
            {"direction": "fwd", "test_weight": 100.0, "production_weight": 100.0, "step": 1, "steps": 1},
        ),
        "🔀 Production traffic → green 100 %",
    ),
    (
        ev(EventKind.TRAFFIC_MOVED, {"direction": "fwd", "test_weight": 100.0, "production_weight": 0.0}),
        None,
    ),
    (
        ev(EventKind.TRAFFIC_MOVED, {"direction": "rb", "test_weight": 0.0, "production_weight": 0.0}),
        None,
    ),
    (
        ev(
            EventKind.HOOK_AWAITING,
            {
                "hook_id": "ecs-pause-a",
                "stage": "PRE_PRODUCTION_TRAFFIC_SHIFT",
                "target_type": "PAUSE",
                "expires_at": (T0 + timedelta(hours=4)).isoformat(),
                "timeout_action": "ROLLBACK",
                "next_step": {"k": 1, "n": 2, "percent": 10.0},
            },
        ),
        "✋ Approval needed before production step 1 of 2 (green 10 %) — <!subteam^S0APPROVERS> <@U0BOB> · not the "
        "requester",
    ),
    (
        ev(
            EventKind.HOOK_AWAITING,
            {
                "hook_id": "p-2",
                "stage": "POST_TEST_TRAFFIC_SHIFT",
                "target_type": "PAUSE",
                "expires_at": None,
                "timeout_action": "CONTINUE",
            },
        ),
        "✋ Approval needed after test traffic moved to green, before production",
    ),
    (
        ev(
            EventKind.HOOK_RESOLVED,
            {
                "hook_id": "ecs-pause-a",
                "stage": "PRE_PRODUCTION_TRAFFIC_SHIFT",
                "target_type": "PAUSE",
                "outcome": "succeeded",
                "resolved_by": "U0BOB",
            },
            "U0BOB",
        ),
        None,
    ),
    (
        ev(
            EventKind.HOOK_RESOLVED,
            {
                "hook_id": "ecs-pause-a",
                "stage": "PRE_PRODUCTION_TRAFFIC_SHIFT",
                "target_type": "PAUSE",
                "outcome": "timed_out",
            },
        ),
        "⌛ Nobody approved in time (before production traffic shift) → rolling back",
    ),
    (
        ev(
            EventKind.HOOK_RESOLVED,
            {
                "hook_id": "ecs-pause-a",
                "target_type": "PAUSE",
                "outcome": "failed",
                "resolved_by": "U0BOB",
                "stage": "POST_TEST_TRAFFIC_SHIFT",
            },
            "U0BOB",
        ),
        None,
    ),
    (
        ev(
            EventKind.HOOK_RESOLVED,
            {
                "hook_id": "ecs-pause-a",
                "target_type": "PAUSE",
                "outcome": "succeeded",
                "stage": "POST_TEST_TRAFFIC_SHIFT",
            },
        ),
        "✅ Pause released outside DeployBot",
    ),
    (
        ev(
            EventKind.HOOK_RESOLVED,
            {
                "hook_id": "l-1",
                "stage": "POST_SCALE_UP",
                "target_type": "AWS_LAMBDA",
                "target_arn": "arn:aws:lambda:us-east-1:1:function:smoke-test",
                "outcome": "failed",
            },
        ),
        None,
    ),
    (
        ev(EventKind.BAKE_STARTED, {"kind": "final", "minutes": 10, "until": (T0 + timedelta(minutes=50)).isoformat()}),
        f"🍞 Bake time 10 min: both revisions run, rollback is instant, ends <!date^{int(T0.timestamp()) + 3000}^",
    ),
    (
        ev(
            EventKind.BAKE_STARTED,
            {"kind": "step", "minutes": 10, "until": None, "step": 1, "steps": 2, "production_weight": 10.0},
        ),
        None,
    ),
    (
        ev(EventKind.ROLLBACK_STARTED, {"cause": "user", "by": "U0BOB"}, "U0BOB"),
        None,
    ),
    (
        ev(EventKind.ROLLBACK_STARTED, {"cause": "alarm", "alarm_names": ["5xx"], "alarm_name": "5xx"}),
        "↩️ Rolling back: CloudWatch alarm `5xx` went off",
    ),
    (
        ev(EventKind.ROLLBACK_STARTED, {"cause": "circuit_breaker", "failure_count": 3, "threshold": 3}),
        "↩️ Rolling back: the deployment circuit breaker tripped (3 failed tasks, threshold 3)",
    ),
    (
        ev(
            EventKind.ROLLBACK_STARTED,
            {
                "cause": "hook_failure",
                "stage": "POST_SCALE_UP",
                "target_arn": "arn:aws:lambda:us-east-1:1:function:smoke",
            },
        ),
        "↩️ Rolling back: lifecycle hook `smoke` failed at post scale-up",
    ),
    (
        ev(EventKind.ROLLBACK_STARTED, {"cause": "timeout", "stage": "PRE_PRODUCTION_TRAFFIC_SHIFT"}),
        "↩️ Rolling back: nobody approved in time (before production traffic shift)",
    ),
    (
        ev(EventKind.ROLLBACK_STARTED, {"cause": "ecs", "reason": "stage ran over <24> hours"}),
        "↩️ Rolling back: ECS: stage ran over &lt;24&gt; hours",
    ),
    (ev(EventKind.FINISHED, {"outcome": "SUCCEEDED", "duration_seconds": 3300}), "✅ *catalog* succeeded in 55m"),
    (
        ev(
            EventKind.FINISHED,
            {"outcome": "ROLLED_BACK", "duration_seconds": 1200, "cause": "alarm", "alarm_names": ["5xx"]},
        ),
        "⏪ *catalog* rolled back after 20m: CloudWatch alarm `5xx`",
    ),
    (
        ev(EventKind.FINISHED, {"outcome": "SUPERSEDED", "cause": "superseded", "duration_seconds": 60}),
        "⏹ *catalog* superseded by a newer deployment after 1m",
    ),
    (
        ev(EventKind.FINISHED, {"outcome": "LOST", "missing_passes": 3, "duration_seconds": 60}),
        "❔ *catalog* lost: ECS no longer knows this deployment",
    ),
    (
        ev(
            EventKind.DECISION,
            {"decision": "APPROVE", "hook_id": "ecs-pause-a", "user": "U0BOB", "source": "button"},
            "U0BOB",
        ),
        "✅ <@U0BOB> approved production step 1 of 2 (green 10 %)",
    ),
    (
        ev(
            EventKind.DECISION,
            {"decision": "ROLLBACK", "hook_id": "-", "reason": "p99 <!here>", "channel": "C0INC42"},
            "U0BOB",
        ),
        "↩️ <@U0BOB> asked for a rollback from <#C0INC42>: p99 &lt;!here&gt;",
    ),
    (
        ev(EventKind.REMINDER, {"hook_id": "ecs-pause-a", "reminder": "waiting", "round": 1}),
        "⏰ Reminder: *catalog* is still waiting for approval before production step 1 of 2",
    ),
    (
        ev(EventKind.REMINDER, {"hook_id": "ecs-pause-a", "reminder": "timeout", "seconds_left": 900}),
        "⏰ 15 minutes left before catalog rolls back automatically",
    ),
    (
        ev(EventKind.LOCKED, {"reason": "freeze <!channel>"}, "U0OPS"),
        None,
    ),
    (ev(EventKind.UNLOCKED, {}, "U0OPS"), None),
]


@pytest.mark.parametrize(
    ("event", "expected"), EVENT_CASES, ids=[f"{e.kind}-{i}" for i, (e, _) in enumerate(EVENT_CASES)]
)
def test_event_message(event: EventView, expected: str | None) -> None:
    msg = event_message(dep(), event, SVC, NOW)
    if expected is None:
        assert msg is None
        return
    assert msg is not None
    valid(msg)
    assert expected in msg.blocks[0]["text"]["text"]
    assert msg.text.startswith("catalog canary 10 %: ")


def test_every_event_kind_is_covered() -> None:
    assert {e.kind for e, _ in EVENT_CASES} == set(EventKind)


def test_approval_needed_mentions_the_approvers_in_the_notification_text() -> None:
    msg = event_message(dep(), EVENT_CASES[10][0], SVC, NOW)
    assert msg is not None
    assert "<!subteam^S0APPROVERS>" in msg.text and "<@U0BOB>" in msg.text
    assert "→ catalog rolls back automatically" in joined(msg)


def test_a_rollback_is_one_line_with_who_where_from_and_why() -> None:
    decided = DecisionView("-", DecisionKind.ROLLBACK, "U0BOB", ActorSource.COMMAND, T0, reason="p99 <!channel>")
    view = dep(status=DeploymentStatus.ROLLING_BACK, decisions=(decided,))
    detail = {"decision": "ROLLBACK", "hook_id": "-", "reason": "p99 <!channel>", "channel": "C0INC42"}
    msg = event_message(view, ev(EventKind.DECISION, detail, "U0BOB"), SVC, NOW)
    assert msg is not None and len(valid(msg).blocks) == 1
    assert msg.blocks[0]["text"]["text"] == "↩️ <@U0BOB> asked for a rollback from <#C0INC42>: p99 &lt;!channel&gt;"
    # ECS's rollback that follows is told by the root message, and the outcome still names the person.
    assert event_message(view, ev(EventKind.ROLLBACK_STARTED, {"cause": "user"}), SVC, NOW) is None
    done = dep(status=DeploymentStatus.ROLLED_BACK, decisions=(decided,))
    finished = event_message(done, ev(EventKind.FINISHED, {"outcome": "ROLLED_BACK", "cause": "user"}), SVC, NOW)
    assert finished is not None and "rolled back after 55m: requested by <@U0BOB>" in finished.text


def test_finished_reply_points_to_the_history() -> None:
    msg = event_message(dep(status=DeploymentStatus.SUCCEEDED), EVENT_CASES[26][0], SVC, NOW)
    assert msg is not None and "History: `/deploy history catalog`" in joined(msg)


def test_timed_out_uses_the_action_announced_when_the_hook_waited() -> None:
    asked = ev(EventKind.HOOK_AWAITING, {"hook_id": "p-9", "stage": "POST_SCALE_UP", "timeout_action": "CONTINUE"})
    view = dep(status=DeploymentStatus.IN_PROGRESS, events=(asked,))
    event = ev(
        EventKind.HOOK_RESOLVED,
        {"hook_id": "p-9", "stage": "POST_SCALE_UP", "target_type": "PAUSE", "outcome": "timed_out"},
    )
    msg = event_message(view, event, SVC, NOW)
    assert msg is not None and "→ continuing without approval" in msg.text


@pytest.mark.parametrize(
    ("action", "left", "expected"),
    [
        (TimeoutAction.ROLLBACK, 15, "⏰ 15 minutes left before catalog rolls back automatically"),
        (TimeoutAction.CONTINUE, 15, "⏰ 15 minutes left before catalog continues automatically without approval"),
        (TimeoutAction.ROLLBACK, 0.5, "⏰ 1 minute left before catalog rolls back automatically"),
    ],
)
def test_timeout_warning(action: TimeoutAction, left: float, expected: str) -> None:
    hook = replace(HOOK, timeout_action=action.value)
    msg = valid(timeout_warning_message(dep(awaiting=(hook,)), hook, SVC, left * 60))
    assert msg.text.startswith(f"catalog canary 10 %: {expected}")
    assert "<!subteam^S0APPROVERS>" in msg.text


def test_reminder_mentions_approvers_and_timeout() -> None:
    msg = valid(reminder_message(dep(), HOOK, SVC))
    assert "still waiting for approval before production step 1 of 2 (green 10 %)" in msg.text
    assert "<!subteam^S0APPROVERS> <@U0BOB>" in msg.text
    epoch = int(HOOK.expires_at.timestamp()) if HOOK.expires_at else 0
    assert f"Times out <!date^{epoch}^" in joined(msg) and "→ catalog rolls back automatically" in joined(msg)


# --- events straight from the state machine ---------------------------------------------------------------------


def test_every_event_the_machine_emits_renders() -> None:
    from tests.domain import test_machine as tm

    runs = [
        tm.run(tm.BG_HAPPY, decisions={"ecs-pause-a": (DecisionKind.APPROVE, "U0BOB")}),
        tm.run(tm.CANARY_TWICE, Strategy.CANARY, 10.0, decisions=tm.CANARY_DECISIONS),
        tm.run(
            [*tm.BEFORE, tm.rolled((tm.pause("ecs-pause-a", "FAILED"),)), tm.rolled(status="ROLLBACK_SUCCESSFUL")],
            decisions={"ecs-pause-a": (DecisionKind.ROLLBACK, "U0BOB")},
        ),
    ]
    seen = set()
    for _, events in runs:
        for i, e in enumerate(events):
            view_event = EventView(i, e.kind, e.key, e.stage, e.detail, e.actor, T0)
            msg = event_message(dep(), view_event, SVC, NOW)
            if telling(e.kind, e.detail) is Telling.REPLY:
                assert msg is not None, e.key
                valid(msg)
                seen.add(e.kind)
            else:
                assert msg is None, e.key
    assert {
        EventKind.TRAFFIC_MOVED,
        EventKind.HOOK_AWAITING,
        EventKind.BAKE_STARTED,
        EventKind.FINISHED,
    } <= seen


# --- incident channel -------------------------------------------------------------------------------------------

LINK = "https://acme.slack.com/archives/C0DEPLOYS/p1714572000000100"


@pytest.mark.parametrize(
    ("detail", "actor", "expected"),
    [
        (
            {"cause": "alarm", "alarm_names": ["5xx"]},
            None,
            "🚨 *catalog* is rolling back automatically: CloudWatch alarm `5xx` went off",
        ),
        (
            {"cause": "circuit_breaker"},
            None,
            "🚨 *catalog* is rolling back automatically: the deployment circuit breaker",
        ),
        (
            {"cause": "hook_failure", "target_arn": "arn:aws:lambda:r:1:function:smoke"},
            None,
            "🚨 *catalog* is rolling back automatically: lifecycle hook `smoke` failed",
        ),
        (
            {"cause": "timeout", "stage": "POST_TEST_TRAFFIC_SHIFT"},
            None,
            "🚨 *catalog* is rolling back automatically: nobody approved in time",
        ),
        ({"cause": "user"}, "U0ONCALL", "↩️ <@U0ONCALL> rolled back *catalog*"),
    ],
)
def test_incident_announcement(detail: dict[str, Any], actor: str | None, expected: str) -> None:
    msg = valid(
        incident_announcement(
            dep(status=DeploymentStatus.ROLLING_BACK), ev(EventKind.ROLLBACK_STARTED, detail, actor), SVC, LINK
        )
    )
    assert msg.text.startswith(expected)
    body = joined(msg)
    assert f"<{LINK}|Open the deployment thread>" in body
    assert "#42 · catalog canary 10 %" in body and "<@U0ALICE>" in body and "`v2` → `v1`" in body


def test_incident_announcement_with_user_reason_and_bad_link() -> None:
    decided = DecisionView("-", DecisionKind.ROLLBACK, "U0ONCALL", ActorSource.COMMAND, T0, reason="errors <!channel>")
    view = dep(status=DeploymentStatus.ROLLING_BACK, decisions=(decided,))
    msg = valid(
        incident_announcement(
            view, ev(EventKind.DECISION, {"decision": "ROLLBACK"}, "U0ONCALL"), SVC, "https://x|<!channel>"
        )
    )
    assert msg.text == "↩️ <@U0ONCALL> rolled back *catalog*: errors &lt;!channel&gt;"
    assert "Open the deployment thread" not in joined(msg)
    assert valid(incident_announcement(view, ev(EventKind.DECISION, {}, "U0ONCALL"), None, None))


# --- answers ----------------------------------------------------------------------------------------------------


def test_ephemeral_is_one_line() -> None:
    msg = valid(ephemeral("Only *approvers* may approve\n`catalog`."))
    assert msg.text == "Only *approvers* may approve `catalog`."
    assert msg.blocks == [{"type": "section", "text": {"type": "mrkdwn", "text": msg.text}}]
    assert valid(ephemeral("x" * 5000)).blocks[0]["text"]["text"].endswith("…")


LOCK = LockView("ui", "S0ONCALL", "freeze <!channel>", T0)
IN_PROGRESS_UI = dict(
    id=43, service_key="ui", status=DeploymentStatus.IN_PROGRESS, production_weight=10.0, lifecycle_stage=S.SCALE_UP
)


@pytest.mark.parametrize(
    ("report", "summary"),
    [
        (StatusReport(None), "No deployment is in progress"),
        (StatusReport("catalog"), "catalog: No deployment is in progress"),
        (StatusReport(None, (dep(),)), "1 deployment in progress · 1 waiting for approval"),
        (StatusReport(None, (dep(), dep(**IN_PROGRESS_UI))), "2 deployments in progress · 1 waiting for approval"),
        (StatusReport(None, (dep(**IN_PROGRESS_UI),), (LOCK,)), "1 deployment in progress · 1 service locked"),
        (StatusReport("ui", (), (LOCK,)), "ui: No deployment is in progress · locked"),
        (
            StatusReport("catalog", (), (), dep(status=DeploymentStatus.SUCCEEDED)),
            "catalog: No deployment is in progress",
        ),
    ],
)
def test_status_summary(report: StatusReport, summary: str) -> None:
    msg = valid(status_message(report, NOW))
    assert msg.text == summary


def test_status_message_lists_deployments_waiting_approvals_and_locks() -> None:
    body = joined(status_message(StatusReport(None, (dep(), dep(**IN_PROGRESS_UI)), (LOCK,)), NOW))
    assert "*catalog* · canary 10 % · #42" in body and "✋ Waiting for approval" in body
    assert "blue ▰▰▰▰▰▰▰▰▰▱ 90 % · green 10 %" in body
    assert "by <@U0ALICE> · <!date^" in body and "(5m ago)" in body  # the bot's clock at both ends
    assert "🔒 *ui* locked by <!subteam^S0ONCALL> since <!date^" in body and "freeze &lt;!channel&gt;" in body


def test_status_of_one_idle_service_says_how_its_last_deployment_ended() -> None:
    body = joined(status_message(StatusReport("catalog", last=dep(status=DeploymentStatus.SUCCEEDED)), NOW))
    assert "Last deployment: ✅ *#42*" in body and "succeeded in 55m" in body
    assert "in progress ·" not in body


def test_status_message_with_very_many() -> None:
    views = tuple(dep(id=i, reason="r" * 900) for i in range(1, 200))
    msg = valid(status_message(StatusReport(None, views), NOW))
    assert "…and " in joined(msg)


def test_history_newest_first_with_outcome_and_duration() -> None:
    old = dep(
        id=40,
        status=DeploymentStatus.ROLLED_BACK,
        created_at=T0 - timedelta(days=2),
        started_at=T0 - timedelta(days=2),
        finished_at=T0 - timedelta(days=2) + timedelta(minutes=20),
    )
    new = dep(id=41, status=DeploymentStatus.SUCCEEDED, reason="<!channel> go")
    msg = valid(history_message([old, new], NOW))
    body = joined(msg)
    assert body.index("*#41*") < body.index("*#40*")
    assert "✅ *#41*" in body and "succeeded in 55m" in body and "⏪ *#40*" in body and "rolled back after 20m" in body
    assert "<@U0ALICE>" in body and "`v1` → `v2`" in body and "&lt;!channel&gt; go" in body
    assert msg.text == "History of catalog: last 2 deployments"
    assert valid(history_message([], NOW)).text == "No deployments found."


def test_history_of_fifty_long_ones_fits() -> None:
    views = [dep(id=i, status=DeploymentStatus.SUCCEEDED, reason="x" * 2000) for i in range(1, 51)]
    valid(history_message(views, NOW))


def test_help_message() -> None:
    msg = valid(help_message())
    assert "/deploy catalog canary 10%" in joined(msg)
    assert msg.text.startswith("DeployBot help — Deploy:")


# --- modal ------------------------------------------------------------------------------------------------------


def state_from(view: dict[str, Any], answers: dict[str, str]) -> dict[str, Any]:
    """Slack's view.state.values for a submission of `view` with `answers`."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        element = block["element"]
        answer = answers.get(block["block_id"])
        if element["type"] == "static_select":
            options = element.get("options") or [o for g in element["option_groups"] for o in g["options"]]
            chosen = next((o for o in options if o["value"] == answer), None)
            state = {"type": "static_select", "selected_option": chosen}
        else:
            state = {"type": "plain_text_input", "value": answer}
        values[block["block_id"]] = {element["action_id"]: state}
    return values


def test_modal_shape_and_round_trip() -> None:
    modal = deploy_modal(["catalog", "ui"], {"service": "ui", "strategy": "canary"}, private_metadata="C0DEPLOYS")
    check_view(modal, ("modal",))
    assert modal["callback_id"] == "deploy_form" and len(modal["title"]["text"]) <= 24
    assert modal["private_metadata"] == "C0DEPLOYS"
    assert [b["block_id"] for b in modal["blocks"]] == ["service", "strategy", "percent", "image", "reason"]
    assert [b["element"]["action_id"] for b in modal["blocks"]] == ["service", "strategy", "percent", "image", "reason"]
    by_id = {b["block_id"]: b for b in modal["blocks"]}
    assert by_id["service"]["element"]["initial_option"]["value"] == "ui"
    assert by_id["strategy"]["element"]["initial_option"]["value"] == "canary"
    assert [o["value"] for o in by_id["strategy"]["element"]["options"]] == ["rolling", "bluegreen", "canary", "linear"]
    assert ":tag or full URI" in by_id["image"]["hint"]["text"]
    assert by_id["reason"]["element"]["multiline"] is True
    assert all(by_id[k].get("optional") for k in ("percent", "image", "reason"))
    state = state_from(
        modal, {"service": "catalog", "strategy": "linear", "percent": " 25 ", "image": ":v2", "reason": "new <index>"}
    )
    assert form_values(state) == {
        "service": "catalog",
        "strategy": "linear",
        "percent": "25",
        "image": ":v2",
        "reason": "new <index>",
    }
    assert form_values(state_from(modal, {"service": "ui", "strategy": "rolling", "percent": "  "})) == {
        "service": "ui",
        "strategy": "rolling",
        "percent": None,
        "image": None,
        "reason": None,
    }
    assert form_values({}) == dict.fromkeys(("service", "strategy", "percent", "image", "reason"))
    json.dumps(modal)


def test_modal_with_a_big_catalog_uses_option_groups() -> None:
    modal = deploy_modal([f"svc-{i:03}" for i in range(250)], None)
    check_view(modal, ("modal",))
    element = modal["blocks"][0]["element"]
    assert "options" not in element and sum(len(g["options"]) for g in element["option_groups"]) == 250
    chosen = form_values(state_from(modal, {"service": "svc-249", "strategy": "bluegreen"}))
    assert chosen["service"] == "svc-249"


def test_modal_errors() -> None:
    assert modal_errors({"percent": "must be 0.1–99.9", "image": ""}) == {
        "response_action": "errors",
        "errors": {"percent": "must be 0.1–99.9"},
    }
    with pytest.raises(ValueError):
        modal_errors({"nope": "x"})


# --- App Home ---------------------------------------------------------------------------------------------------


def test_app_home_has_buttons_and_recent() -> None:
    active = [dep(), dep(id=43, status=DeploymentStatus.IN_PROGRESS, version=2)]
    recent = [dep(id=40, status=DeploymentStatus.SUCCEEDED)]
    home = app_home(active, recent, NOW, {"catalog": SVC})
    check_view(home, ("home",))
    assert home["type"] == "home"
    assert [(b["action_id"], b["value"]) for b in buttons(home["blocks"])] == [
        ("deploy_approve", "42|ecs-pause-a"),
        ("deploy_rollback", "42|ecs-pause-a"),
        ("deploy_rollback", "43|-"),
    ]
    assert [b["block_id"] for b in actions(home["blocks"])] == ["dep-42-v7", "dep-43-v2"]
    body = joined(home)
    assert "Your recent deployments" in body and "✅ *#40*" in body
    json.dumps(home)


def test_app_home_empty() -> None:
    home = app_home([], [], NOW, {})
    check_view(home, ("home",))
    body = joined(home)
    assert "Nothing in progress." in body and "You have not deployed anything yet." in body


def test_app_home_truncates_to_a_hundred_blocks() -> None:
    active = [dep(id=i) for i in range(1, 80)]
    recent = [dep(id=i, status=DeploymentStatus.SUCCEEDED, reason="y" * 300) for i in range(100, 160)]
    home = app_home(active, recent, NOW, {"catalog": SVC})
    check_view(home, ("home",))
    assert len(home["blocks"]) <= 100
    body = joined(home)
    assert "more in progress (see `/deploy status`)" in body and "Your recent deployments" in body
    shown = len({b["block_id"] for b in actions(home["blocks"])})
    assert f"…and {79 - shown} more in progress" in body


def test_size_guard_drops_trailing_blocks_with_a_note() -> None:
    from bot.slack.blocks.base import context, finish, section

    msg = finish("t", [section("x" * 2900) for _ in range(8)])
    valid(msg)
    assert len(msg.blocks) < 8 and msg.blocks[-1]["elements"][0]["text"].startswith("…and ")
    many = finish("t", [context(f"{i}") for i in range(60)])
    assert len(many.blocks) == 50 and many.blocks[-1]["elements"][0]["text"] == "…and 11 more"


def test_the_modal_at_its_limits_passes_the_stand_ins_checker() -> None:
    """Names at the option value limit, 10,500 services, every field pre-filled to the input limit."""
    names = ["s" * 150, "t" * 151, *(f"svc-{i:05}" for i in range(10_500))]
    defaults = {"service": "s" * 150, "percent": "9" * 3000, "image": "i" * 3000, "reason": "r" * 1000}
    modal = deploy_modal(names, defaults, private_metadata="m" * 5000)
    check_view(modal, ("modal",))
    groups = modal["blocks"][0]["element"]["option_groups"]
    assert len(groups) == 100 and all(len(o["text"]["text"]) <= 75 for g in groups for o in g["options"])


def test_the_plain_text_fallback_passes_the_stand_ins_checker() -> None:
    fallback = plain_fallback(root_message(dep(service_key="s" * 5000, reason="r" * 5000), SVC, NOW))
    assert [b["type"] for b in valid(fallback).blocks] == ["section"]


def test_a_headless_blue_green_shows_no_traffic_bar() -> None:
    view = dep(strategy=Strategy.BLUE_GREEN, canary_percent=None, headless=True, status=DeploymentStatus.SUCCEEDED)
    body = joined(valid(root_message(view, SVC, NOW)))
    assert "blue ▰" not in body and "none to shift: no load balancer" in body
    assert "blue ▰" not in joined(
        status_message(StatusReport(None, (replace(view, status=DeploymentStatus.IN_PROGRESS),)), NOW)
    )


@pytest.mark.parametrize(
    ("decisions", "detail", "expected"),
    [
        ((), {"cause": "user", "by": "U0CAROL"}, "requested by <@U0CAROL>"),
        (
            (DecisionView("-", DecisionKind.ROLLBACK, "U0BOB", ActorSource.COMMAND, T0),),
            {"cause": "user"},
            "requested by <@U0BOB>",
        ),
        ((), {"cause": "user"}, "requested outside DeployBot"),
        ((), {"cause": "ecs"}, "ECS gave no reason"),
    ],
)
def test_every_outcome_names_a_person_or_a_cause(
    decisions: tuple[DecisionView, ...], detail: dict[str, Any], expected: str
) -> None:
    view = dep(status=DeploymentStatus.ROLLED_BACK, decisions=decisions)
    msg = event_message(view, ev(EventKind.FINISHED, {"outcome": "ROLLED_BACK", **detail}), SVC, NOW)
    assert msg is not None and msg.text.endswith(f"rolled back after 55m: {expected} · cc <@U0ALICE>")
    assert "someone" not in msg.text


@pytest.mark.parametrize(
    ("status", "detail", "says"),
    [
        (DeploymentStatus.SUCCEEDED, {"outcome": "SUCCEEDED"}, "✅ *catalog* succeeded in 55m"),
        (
            DeploymentStatus.ROLLED_BACK,
            {"outcome": "ROLLED_BACK", "cause": "user", "by": "U0CAROL"},
            "⏪ *catalog* rolled back after 55m: requested by <@U0CAROL>",
        ),
        (
            DeploymentStatus.ROLLED_BACK,
            {"outcome": "ROLLED_BACK", "cause": "circuit_breaker", "failure_count": 3, "threshold": 3},
            "⏪ *catalog* rolled back after 55m: the deployment circuit breaker tripped (3 failed tasks, threshold 3)",
        ),
        (DeploymentStatus.FAILED, {"outcome": "FAILED"}, "❌ *catalog* failed to start"),
    ],
)
def test_the_outcome_reply_mentions_the_requester_so_their_phone_buzzes(
    status: DeploymentStatus, detail: dict[str, Any], says: str
) -> None:
    started = {} if status is not DeploymentStatus.FAILED else {"started_at": None}
    msg = event_message(dep(status=status, **started), ev(EventKind.FINISHED, detail), SVC, NOW)
    assert msg is not None
    line = valid(msg).blocks[0]["text"]["text"]
    assert line == f"{says} · cc <@U0ALICE>"
    assert "<@U0ALICE>" in msg.text  # the notification's text carries the mention too


def test_the_outcome_mentions_only_a_person() -> None:
    view = dep(status=DeploymentStatus.SUCCEEDED, requested_by="deploybot")
    msg = event_message(view, ev(EventKind.FINISHED, {"outcome": "SUCCEEDED"}), SVC, NOW)
    assert msg is not None and " · cc " not in msg.text and "<@" not in msg.text


@pytest.mark.parametrize(
    ("status", "detail", "says"),
    [
        (
            DeploymentStatus.ROLLED_BACK,
            {"outcome": "ROLLED_BACK", "cause": "user", "by": "U0CAROL"},
            "⏪ *catalog* rolled back after 55m: requested by <@U0CAROL> · back on `v1`",
        ),
        (
            DeploymentStatus.ROLLED_BACK,
            {"outcome": "ROLLED_BACK", "cause": "alarm", "alarm_names": ["catalog-5xx"]},
            "⏪ *catalog* rolled back after 55m: CloudWatch alarm `catalog-5xx` went off · back on `v1`",
        ),
        (
            DeploymentStatus.ROLLBACK_FAILED,
            {"outcome": "ROLLBACK_FAILED", "cause": "alarm", "alarm_names": ["catalog-5xx"]},
            "❌ *catalog* rollback failed after 55m: CloudWatch alarm `catalog-5xx` went off",
        ),
    ],
)
def test_the_incident_channel_hears_how_the_rollback_ended(
    status: DeploymentStatus, detail: dict[str, Any], says: str
) -> None:
    link = "https://example.slack.com/archives/C0DEPLOYS/p1714572000000100"
    msg = valid(incident_closing(dep(status=status), ev(EventKind.FINISHED, detail), SVC, link))
    assert msg.blocks[0]["text"]["text"] == says and msg.text == says
    assert f"<{link}|Open the deployment thread>" in joined(msg) and "#42 · prod/catalog" in joined(msg)
