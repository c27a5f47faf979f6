"""Actionable first, never stale (issue 12, item 3): which messages jump the queue, which replies are overtaken."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.domain.enums import ActorSource, DecisionKind, DeploymentStatus, EventKind, RenderKind
from bot.domain.outbox import ACTIONABLE, ROUTINE, WAITED_FOR, overtaken, priority
from bot.domain.readmodels import AwaitingHook, DecisionView, EventView
from tests.slack.test_blocks import dep

T = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("render", "kind", "detail", "expected"),
    [
        (RenderKind.ROOT, None, None, WAITED_FOR),  # someone was just told to follow its thread
        (RenderKind.EVENT, EventKind.HOOK_AWAITING, {}, ACTIONABLE),
        (RenderKind.EVENT, EventKind.REMINDER, {}, ACTIONABLE),
        (RenderKind.EVENT, EventKind.ROLLBACK_STARTED, {"cause": "ALARM"}, ACTIONABLE),
        (RenderKind.EVENT, EventKind.START_FAILED, {}, ACTIONABLE),
        (RenderKind.EVENT, EventKind.FINISHED, {"outcome": "ROLLED_BACK"}, ACTIONABLE),
        (RenderKind.EVENT, EventKind.FINISHED, {"outcome": "FAILED"}, ACTIONABLE),
        (RenderKind.EVENT, EventKind.FINISHED, {"outcome": "SUCCEEDED"}, ROUTINE),
        (RenderKind.INCIDENT, EventKind.ROLLBACK_STARTED, {}, ACTIONABLE),  # the incident channel hears at once
        (RenderKind.EVENT, EventKind.STARTED, {}, ROUTINE),
        (RenderKind.EVENT, EventKind.TRAFFIC_MOVED, {}, ROUTINE),
        (RenderKind.EVENT, EventKind.DECISION, {"decision": "APPROVE"}, ROUTINE),
        (RenderKind.EVENT, EventKind.BAKE_STARTED, {}, ROUTINE),
        (RenderKind.MESSAGE, None, None, ROUTINE),
    ],
)
def test_priority(render: str, kind: EventKind | None, detail: dict[str, Any] | None, expected: int) -> None:
    assert priority(render, kind, detail) == expected


def event(kind: EventKind, hook: str = "h1") -> EventView:
    return EventView(1, kind, f"{kind}:{hook}", "PRODUCTION_TRAFFIC_SHIFT", {"hook_id": hook}, None, T)


WAITING = AwaitingHook("h1", "PRODUCTION_TRAFFIC_SHIFT", None, "ROLLBACK")
APPROVED = DecisionView("h1", DecisionKind.APPROVE, "U0BOB", ActorSource.BUTTON, T)
OTHER = DecisionView("h0", DecisionKind.APPROVE, "U0BOB", ActorSource.BUTTON, T)


@pytest.mark.parametrize(
    ("kind", "status", "awaiting", "decisions", "reason"),
    [
        (EventKind.HOOK_AWAITING, DeploymentStatus.AWAITING_APPROVAL, (WAITING,), (), None),  # still wanted: post
        (EventKind.HOOK_AWAITING, DeploymentStatus.AWAITING_APPROVAL, (WAITING,), (OTHER,), None),  # another pause
        (EventKind.HOOK_AWAITING, DeploymentStatus.AWAITING_APPROVAL, (WAITING,), (APPROVED,), "already decided"),
        (EventKind.HOOK_AWAITING, DeploymentStatus.IN_PROGRESS, (), (APPROVED,), "already decided"),
        (EventKind.HOOK_AWAITING, DeploymentStatus.ROLLED_BACK, (), (), "has ended"),
        (EventKind.HOOK_AWAITING, DeploymentStatus.SUCCEEDED, (), (), "has ended"),
        (EventKind.HOOK_AWAITING, DeploymentStatus.IN_PROGRESS, (), (), "no longer waits"),  # released elsewhere
        (EventKind.REMINDER, DeploymentStatus.AWAITING_APPROVAL, (WAITING,), (), None),
        (EventKind.REMINDER, DeploymentStatus.AWAITING_APPROVAL, (WAITING,), (APPROVED,), "already decided"),
        (EventKind.REMINDER, DeploymentStatus.ROLLED_BACK, (), (), "has ended"),
        # History is told late or not: only a call to act goes stale.
        (EventKind.TRAFFIC_MOVED, DeploymentStatus.SUCCEEDED, (), (APPROVED,), None),
        (EventKind.ROLLBACK_STARTED, DeploymentStatus.ROLLED_BACK, (), (), None),
        (EventKind.DECISION, DeploymentStatus.SUCCEEDED, (), (APPROVED,), None),
        (EventKind.FINISHED, DeploymentStatus.SUCCEEDED, (), (), None),
    ],
)
def test_overtaken(
    kind: EventKind,
    status: DeploymentStatus,
    awaiting: tuple[AwaitingHook, ...],
    decisions: tuple[DecisionView, ...],
    reason: str | None,
) -> None:
    found = overtaken(event(kind), dep(status=status, awaiting=awaiting, decisions=decisions))
    assert (found is None) == (reason is None) and (reason is None or reason in (found or "")), found
