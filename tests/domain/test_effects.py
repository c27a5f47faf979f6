"""Whether a decision took effect, from ECS's state after an error (a lost answer may hide a call that landed)."""

from __future__ import annotations

import pytest

from bot.domain.effects import decision_effect
from bot.domain.enums import STOP_HOOK_ID, DecisionEffect, DecisionKind, EcsStatus
from bot.domain.snapshot import HookDetail, RollbackInfo, Snapshot

A, R = DecisionKind.APPROVE, DecisionKind.ROLLBACK
TOOK, NOT_YET, OVERTAKEN = DecisionEffect.TOOK_EFFECT, DecisionEffect.NOT_YET, DecisionEffect.OVERTAKEN
HOOK = "ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw"


def snap(status: EcsStatus = EcsStatus.IN_PROGRESS, hook: str | None = None, rollback: bool = False) -> Snapshot:
    hooks = (HookDetail(HOOK, "PAUSE", status=hook),) if hook else ()
    return Snapshot("arn:dep", status, hooks=hooks, rollback=RollbackInfo("asked") if rollback else None)


@pytest.mark.parametrize(
    ("kind", "hook", "snapshot", "effect"),
    [
        (A, HOOK, snap(hook="AWAITING_ACTION"), NOT_YET),
        (A, HOOK, snap(hook="SUCCEEDED"), TOOK),  # the call landed, its answer was lost
        (A, HOOK, snap(), TOOK),  # the pause left the list: the deployment went on
        (A, HOOK, snap(EcsStatus.SUCCESSFUL), TOOK),
        (A, HOOK, snap(hook="TIMED_OUT"), OVERTAKEN),
        (A, HOOK, snap(hook="FAILED"), OVERTAKEN),  # someone rolled it back
        (A, HOOK, snap(EcsStatus.ROLLBACK_IN_PROGRESS, rollback=True), OVERTAKEN),
        (A, HOOK, snap(EcsStatus.STOPPED), OVERTAKEN),
        (A, HOOK, snap(EcsStatus.STOPPED, hook="AWAITING_ACTION"), OVERTAKEN),
        (A, HOOK, None, OVERTAKEN),  # ECS no longer knows the deployment
        (R, HOOK, snap(hook="AWAITING_ACTION"), NOT_YET),
        (R, HOOK, snap(hook="FAILED"), TOOK),
        (R, HOOK, snap(EcsStatus.ROLLBACK_REQUESTED, rollback=True), TOOK),
        (R, HOOK, snap(hook="SUCCEEDED"), OVERTAKEN),  # someone approved first
        (R, HOOK, snap(EcsStatus.SUCCESSFUL), OVERTAKEN),
        (R, STOP_HOOK_ID, snap(), NOT_YET),
        (R, STOP_HOOK_ID, snap(EcsStatus.ROLLBACK_IN_PROGRESS, rollback=True), TOOK),
        (R, STOP_HOOK_ID, snap(EcsStatus.ROLLBACK_SUCCESSFUL, rollback=True), TOOK),
        (R, STOP_HOOK_ID, snap(EcsStatus.SUCCESSFUL), OVERTAKEN),
    ],
)
def test_decision_effect(kind: DecisionKind, hook: str, snapshot: Snapshot | None, effect: DecisionEffect) -> None:
    assert decision_effect(kind, hook, snapshot) is effect
