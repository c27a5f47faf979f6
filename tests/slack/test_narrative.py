"""The thread, strategy by strategy (docs/ARCHITECTURE.md, "The thread"): events in, thread replies and root states out.

Each story feeds ECS snapshots and people's decisions through the real machine, the reconciler's state update, the
narrative (`telling`) and the Block Kit builders, the way a deployment goes through them, and pins every reply and the
root message's status line (with the checklist's production step) after each step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from bot.db.store import deployment_view, event_view
from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import (
    STOP_HOOK_ID,
    ActorSource,
    DecisionKind,
    DeploymentStatus,
    EventKind,
    HookStage,
    LifecycleStage,
    Strategy,
    Telling,
)
from bot.domain.machine.advance import advance
from bot.domain.machine.state import Event, Tracked
from bot.domain.readmodels import DeploymentView
from bot.domain.snapshot import AlarmsInfo, RollbackInfo, Snapshot
from bot.domain.telling import telling
from bot.engine.reconcile_batch import _apply_state
from bot.slack.blocks import event_message, root_message
from bot.slack.blocks.parts import checklist
from bot.slack.blocks.root import status_line
from models import Decision, Deployment, DeploymentEvent
from tests.domain.test_machine import T0, pause, snap

S = LifecycleStage
PRE_PROD = HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT
POST_TEST = HookStage.POST_TEST_TRAFFIC_SHIFT
APPROVERS = "<!subteam^S0APPROVERS> · not the requester"
REPO = "public.ecr.aws/aws-containers/retail-store-sample-catalog"


@dataclass(frozen=True)
class Act:
    """A person's decision, applied before the next snapshot."""

    kind: DecisionKind
    hook: str
    user: str = "U0BOB"
    channel: str = "C0DEPLOYS"
    reason: str | None = None


@dataclass(frozen=True)
class Story:
    """One deployment of `service`: what ECS reports, poll by poll, and what people do in between."""

    strategy: Strategy
    steps: Sequence[Snapshot | Act]
    step: float | None = None
    approvals: tuple[HookStage, ...] = ()
    service: str = "catalog"
    extra: dict[str, Any] = field(default_factory=dict)


def service(story: Story) -> ServiceConfig:
    return ServiceConfig(
        key=story.service,
        cluster="unicorn-watch",
        service=story.service,
        region="us-east-1",
        container=story.service,
        deployers=("U0ALICE",),
        approvers=("S0APPROVERS",),
        four_eyes=True,
        approval_stages=story.approvals,
        incident_channel="C0INC42",
    )


def deployment(story: Story) -> Deployment:
    """The row as the engine has it once ECS accepted the deployment."""
    return Deployment(
        id=7,
        service_key=story.service,
        cluster="unicorn-watch",
        service=story.service,
        region="us-east-1",
        strategy=story.strategy,
        canary_percent=story.step if story.strategy is Strategy.CANARY else None,
        linear_step_percent=story.step if story.strategy is Strategy.LINEAR else None,
        approval_stages=[str(s) for s in story.approvals],
        image_from=f"{REPO}:1.2.1",
        image_to=f"{REPO}:1.3.0",
        status=DeploymentStatus.IN_PROGRESS,
        requested_by="U0ALICE",
        channel_id="C0DEPLOYS",
        root_ts="1700000000.000100",
        created_at=T0,
        version=1,
        tracked=Tracked.start(story.strategy, story.step).to_json(),
    )


@dataclass
class Told:
    """What a story produced: the thread's replies and, after each step, the root message's state."""

    replies: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    last: DeploymentView | None = None


def root_state(view: DeploymentView) -> str:
    """The root message's status line, plus the checklist's production line for stepped strategies."""
    line = status_line(view)
    if view.strategy in (Strategy.CANARY, Strategy.LINEAR):
        production = next((row for row in checklist(view).split("\n") if "Production traffic shift" in row), "")
        return f"{line} | {production}"
    return line


def play(story: Story) -> Told:
    dep, cfg = deployment(story), service(story)
    decisions: list[Decision] = []
    rows: list[DeploymentEvent] = []
    told = Told()

    def tell(events: list[Event], now: Any) -> None:
        new = []
        for e in events:
            row = DeploymentEvent(
                id=len(rows) + 1,
                deployment_id=dep.id,
                service_key=dep.service_key,
                kind=e.kind,
                key=e.key,
                stage=e.stage,
                detail=dict(e.detail),
                actor=e.actor,
                at=now,
            )
            rows.append(row)
            new.append(row)
        dep.version += 1
        view = deployment_view(dep, decisions, rows)
        for row in new:
            message = event_message(view, event_view(row), cfg, now)
            assert (message is not None) is (telling(row.kind, row.detail) is Telling.REPLY), row.key
            if message is not None:
                told.replies.append(message.blocks[0]["text"]["text"])
        root_message(view, cfg, now)  # every state renders
        told.roots.append(root_state(view))
        told.last = view

    tell([Event(EventKind.ACCEPTED, "accepted", actor="U0ALICE"), Event(EventKind.STARTED, "started")], T0)
    for i, step in enumerate(story.steps):
        now = T0 + timedelta(seconds=30 * (i + 1))  # the bot's clock: never shown against ECS's (test_clocks.py)
        if isinstance(step, Act):
            decisions.append(
                Decision(
                    deployment_id=dep.id,
                    hook_id=step.hook,
                    kind=step.kind,
                    user_id=step.user,
                    source=ActorSource.BUTTON,
                    channel_id=step.channel,
                    reason=step.reason,
                    decided_at=now,
                    applied_at=now,
                )
            )
            detail = {"decision": step.kind.value, "hook_id": step.hook, "reason": step.reason, "channel": step.channel}
            stage = (dep.tracked.get("hook_info", {}).get(step.hook) or {}).get("stage")
            tell([Event(EventKind.DECISION, f"decision:{step.hook}", stage, detail, step.user)], now)
            continue
        by_hook = {d.hook_id: (d.kind, d.user_id) for d in decisions if d.hook_id != STOP_HOOK_ID}
        stopped_by = next((d.user_id for d in decisions if d.hook_id == STOP_HOOK_ID), None)
        state, events = advance(Tracked.from_json(dep.tracked), step, now, by_hook, stopped_by=stopped_by)
        _apply_state(dep, state, step)
        tell(events, now)
    return told


# The snapshots ---------------------------------------------------------------------------------------------------
def stepped(strategy: Strategy, percent: float) -> Any:
    def at(stage: S | None, weights: tuple[float, float] = (0.0, 0.0), minute: int = 0, **kw: Any) -> Snapshot:
        return snap(stage, weights, strategy=strategy, step=percent, step_bake=5, bake=5, at=minute, **kw)

    return at


canary = stepped(Strategy.CANARY, 10.0)
linear = stepped(Strategy.LINEAR, 20.0)


def blue_green(stage: S | None, weights: tuple[float, float] = (0.0, 0.0), minute: int = 0, **kw: Any) -> Snapshot:
    return snap(stage, weights, bake=5, at=minute, **kw)


def rolling(status: str = "IN_PROGRESS", minute: int = 0) -> Snapshot:
    return snap(None, None, strategy=Strategy.ROLLING, status=status, at=minute)


def start(at: Any) -> list[Snapshot | Act]:
    """Every stage up to production, each seen by a poll."""
    return [
        at(S.PRE_SCALE_UP, minute=0),
        at(S.SCALE_UP, minute=1),
        at(S.POST_SCALE_UP, minute=2),
        at(S.TEST_TRAFFIC_SHIFT, (100.0, 0.0), 3),
        at(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), 4),
    ]


def ending(at: Any, minute: int) -> list[Snapshot | Act]:
    return [
        at(S.POST_PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0), minute),
        at(S.BAKE_TIME, (100.0, 100.0), minute + 1),
        at(S.CLEAN_UP, (100.0, 100.0), minute + 6),
        at(S.CLEAN_UP, (100.0, 100.0), minute + 7, status="SUCCESSFUL"),
    ]


def approved_step(at: Any, hook: str, before: float, after: float, minute: int) -> list[Snapshot | Act]:
    """A pause before a production step, a person approves it, ECS moves the traffic."""
    return [
        at(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, before), minute, hooks=(pause(hook),)),
        Act(DecisionKind.APPROVE, hook),
        at(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, after), minute + 1, hooks=(pause(hook, "SUCCEEDED"),)),
    ]


CANARY_TWO_APPROVALS = [
    *start(canary),
    *approved_step(canary, "p1", 0.0, 10.0, 5),
    *approved_step(canary, "p2", 10.0, 100.0, 11),
    *ending(canary, 13),
]
LINEAR_FIVE_APPROVALS = [
    *start(linear),
    *(s for k in range(5) for s in approved_step(linear, f"p{k + 1}", 20.0 * k, 20.0 * (k + 1), 5 + 6 * k)),
    *ending(linear, 36),
]
LINEAR_UNATTENDED = [
    *start(linear),
    *(linear(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 20.0 * k), 5 + 6 * k) for k in range(1, 6)),
    *ending(linear, 36),
]
BLUE_GREEN_TEST_APPROVAL = [
    *start(blue_green),
    blue_green(S.POST_TEST_TRAFFIC_SHIFT, (100.0, 0.0), 5, hooks=(pause("t1"),)),
    Act(DecisionKind.APPROVE, "t1"),
    blue_green(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 100.0), 6, hooks=(pause("t1", "SUCCEEDED"),)),
    *ending(blue_green, 7),
]
CANARY_ROLLED_BACK_FROM_THE_INCIDENT_CHANNEL = [
    *start(canary),
    *approved_step(canary, "p1", 0.0, 10.0, 5),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0), 11, hooks=(pause("p2"),)),
    Act(DecisionKind.ROLLBACK, "p2", user="U0CAROL", channel="C0INC42", reason="5xx on checkout"),
    canary(
        S.PRODUCTION_TRAFFIC_SHIFT,
        (0.0, 0.0),
        12,
        status="ROLLBACK_IN_PROGRESS",
        hooks=(pause("p2", "FAILED"),),
        rollback=RollbackInfo("rolled back by ContinueServiceDeployment", T0 + timedelta(minutes=12)),
    ),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (0.0, 0.0), 13, status="ROLLBACK_SUCCESSFUL"),
]
ALARM = AlarmsInfo("TRIGGERED", ("catalog-5xx",), ("catalog-5xx",))
CANARY_ALARM_DURING_BAKE = [
    *start(canary),
    *approved_step(canary, "p1", 0.0, 10.0, 5),
    *approved_step(canary, "p2", 10.0, 100.0, 11),
    canary(S.BAKE_TIME, (100.0, 100.0), 13),
    canary(S.BAKE_TIME, (0.0, 0.0), 15, status="ROLLBACK_IN_PROGRESS", alarms=ALARM),
    canary(S.BAKE_TIME, (0.0, 0.0), 16, status="ROLLBACK_SUCCESSFUL", alarms=ALARM),
]
CANARY_SEEN_RARELY = [  # polls so far apart that stages (and the final bake) run between two of them
    canary(S.PRE_SCALE_UP, minute=0),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 0.0), 5, hooks=(pause("p1"),)),
    Act(DecisionKind.APPROVE, "p1"),
    canary(S.PRODUCTION_TRAFFIC_SHIFT, (100.0, 10.0), 11, hooks=(pause("p1", "SUCCEEDED"), pause("p2"))),
    Act(DecisionKind.APPROVE, "p2"),
    canary(S.CLEAN_UP, (100.0, 100.0), 20, status="SUCCESSFUL"),
]
ROLLING = [rolling(minute=0), rolling(minute=1), rolling("SUCCESSFUL", minute=3)]

STARTED = "▶️ ECS started deploying *catalog*: `1.2.1` → `1.3.0`"
BAKE = "🍞 Bake time 5 min: both revisions run, rollback is instant, ends <!date^"


def asked(k: int, n: int, percent: int) -> str:
    return f"✋ Approval needed before production step {k} of {n} (green {percent} %) — {APPROVERS}"


def approved(k: int, n: int, percent: int, who: str = "<@U0BOB>") -> str:
    return f"✅ {who} approved production step {k} of {n} (green {percent} %)"


# (name, story, the replies, at most) — targets from issue 12: a canary with two approvals in at most ~10 replies,
# a linear 20 % in at most ~14.
STORIES = [
    (
        "canary, two approvals",
        Story(Strategy.CANARY, CANARY_TWO_APPROVALS, 10.0, (PRE_PROD,)),
        [
            STARTED,
            asked(1, 2, 10),
            approved(1, 2, 10),
            asked(2, 2, 100),
            approved(2, 2, 100),
            BAKE,
            "✅ *catalog* succeeded in 20m",
        ],
        10,
    ),
    (
        "canary, seen rarely",
        Story(Strategy.CANARY, CANARY_SEEN_RARELY, 10.0, (PRE_PROD,)),
        [
            STARTED,
            asked(1, 2, 10),
            approved(1, 2, 10),
            asked(2, 2, 100),
            approved(2, 2, 100),
            "✅ *catalog* succeeded in 20m",
        ],
        10,
    ),
    (
        "linear 20 %, five approvals",
        Story(Strategy.LINEAR, LINEAR_FIVE_APPROVALS, 20.0, (PRE_PROD,)),
        [
            STARTED,
            *(line for k in range(1, 6) for line in (asked(k, 5, 20 * k), approved(k, 5, 20 * k))),
            BAKE,
            "✅ *catalog* succeeded in 43m",
        ],
        14,
    ),
    (
        "linear 20 %, no approvals",
        Story(Strategy.LINEAR, LINEAR_UNATTENDED, 20.0),
        [
            STARTED,
            *(
                f"🔀 Production traffic → green {20 * k} % (step {k} of 5) · bake 5 min, ends <!date^"
                for k in range(1, 5)
            ),
            "🔀 Production traffic → green 100 % (step 5 of 5)",
            BAKE,
            "✅ *catalog* succeeded in 43m",
        ],
        14,
    ),
    (
        "blue/green, approval after test traffic",
        Story(Strategy.BLUE_GREEN, BLUE_GREEN_TEST_APPROVAL, approvals=(POST_TEST,), service="ui"),
        [
            "▶️ ECS started deploying *ui*: `1.2.1` → `1.3.0`",
            f"✋ Approval needed after test traffic moved to green, before production — {APPROVERS}",
            "✅ <@U0BOB> approved the pause after test traffic moved to green, before production",
            "🔀 Production traffic → green 100 %",
            BAKE,
            "✅ *ui* succeeded in 14m",
        ],
        8,
    ),
    (
        "rolling",
        Story(Strategy.ROLLING, ROLLING, service="orders"),
        ["▶️ ECS started deploying *orders*: `1.2.1` → `1.3.0`", "✅ *orders* succeeded in 3m"],
        3,
    ),
    (
        "canary rolled back from the incident channel",
        Story(Strategy.CANARY, CANARY_ROLLED_BACK_FROM_THE_INCIDENT_CHANNEL, 10.0, (PRE_PROD,)),
        [
            STARTED,
            asked(1, 2, 10),
            approved(1, 2, 10),
            asked(2, 2, 100),
            "↩️ <@U0CAROL> asked for a rollback from <#C0INC42>: 5xx on checkout",
            "⏪ *catalog* rolled back after 13m: requested by <@U0CAROL>",
        ],
        10,
    ),
    (
        "canary, alarm during the bake",
        Story(Strategy.CANARY, CANARY_ALARM_DURING_BAKE, 10.0, (PRE_PROD,)),
        [
            STARTED,
            asked(1, 2, 10),
            approved(1, 2, 10),
            asked(2, 2, 100),
            approved(2, 2, 100),
            BAKE,
            "↩️ Rolling back: CloudWatch alarm `catalog-5xx` went off",
            "⏪ *catalog* rolled back after 16m: CloudWatch alarm `catalog-5xx` went off",
        ],
        10,
    ),
]


@pytest.mark.parametrize(("name", "story", "replies", "most"), STORIES, ids=[s[0] for s in STORIES])
def test_the_thread_of_each_strategy(name: str, story: Story, replies: list[str], most: int) -> None:
    told = play(story)
    assert len(told.replies) == len(replies) <= most, told.replies
    for got, want in zip(told.replies, replies, strict=True):
        assert got.startswith(want), (got, want)


def distinct(states: list[str]) -> list[str]:
    return [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]


def test_the_root_message_of_a_canary_with_two_approvals() -> None:
    told = play(Story(Strategy.CANARY, CANARY_TWO_APPROVALS, 10.0, (PRE_PROD,)))
    production = "Production traffic shift  _"
    assert distinct(told.roots) == [
        f"⏳ In progress | · {production}approval before each step_",
        f"⏳ In progress — Pre scale-up | · {production}approval before each step_",
        f"⏳ In progress — Scale up green | · {production}approval before each step_",
        f"⏳ In progress — Post scale-up | · {production}approval before each step_",
        f"⏳ In progress — Test traffic shift | · {production}approval before each step_",
        f"⏳ In progress — Post test traffic shift | · {production}approval before each step_",
        "✋ Waiting for approval before production step 1 of 2 (green 10 %) | "
        f"▶ {production}green 0 % · step 1 of 2 waits for approval · approval before each step_",
        "✋ Waiting for approval before production step 1 of 2 (green 10 %) | "
        f"▶ {production}green 0 % · step 1 of 2 approved · approval before each step_",
        "⏳ In progress — Production traffic shift (green 10 % · step 1 of 2) | "
        f"▶ {production}green 10 % · step 1 of 2 · approval before each step_",
        # Waiting for step 2, the checklist says step 2, not the step 1 it is on.
        "✋ Waiting for approval before production step 2 of 2 (green 100 %) | "
        f"▶ {production}green 10 % · step 2 of 2 waits for approval · approval before each step_",
        "✋ Waiting for approval before production step 2 of 2 (green 100 %) | "
        f"▶ {production}green 10 % · step 2 of 2 approved · approval before each step_",
        "⏳ In progress — Production traffic shift (green 100 % · step 2 of 2) | "
        f"▶ {production}green 100 % · step 2 of 2 · approval before each step_",
        "⏳ In progress — Post production traffic shift (green 100 % · step 2 of 2) | "
        f"✓ {production}approval before each step_",
        f"⏳ In progress — Bake time (green 100 % · step 2 of 2) | ✓ {production}approval before each step_",
        f"⏳ In progress — Clean up blue (green 100 % · step 2 of 2) | ✓ {production}approval before each step_",
        f"✅ Succeeded | ✓ {production}approval before each step_",
    ]
    assert told.last is not None and told.last.production_weight == 100.0
