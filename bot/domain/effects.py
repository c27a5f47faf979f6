"""Whether a decision took effect, judged from ECS's state (pure).

ContinueServiceDeployment and StopServiceDeployment take no client token: a call whose answer was lost (a timeout,
a 5xx after the work was done) may have landed, and a second call then fails because the pause no longer waits.
So after any error, and before any retry, the bot describes the deployment and asks this module what happened.
"""

from __future__ import annotations

from bot.domain.enums import STOP_HOOK_ID, DecisionEffect, DecisionKind, EcsStatus, HookStatus
from bot.domain.machine.rules import rollback_active
from bot.domain.snapshot import Snapshot

# A decision's own outcome on its hook: CONTINUE → SUCCEEDED, ROLLBACK → FAILED.
OWN_OUTCOME = {DecisionKind.APPROVE: HookStatus.SUCCEEDED, DecisionKind.ROLLBACK: HookStatus.FAILED}


def decision_effect(kind: DecisionKind, hook_id: str, snapshot: Snapshot | None) -> DecisionEffect:
    """TOOK_EFFECT, NOT_YET or OVERTAKEN for `kind` on `hook_id` (STOP_HOOK_ID: StopServiceDeployment)."""
    if snapshot is None:  # ECS no longer knows the deployment
        return DecisionEffect.OVERTAKEN
    rolling_back = rollback_active(snapshot)
    if kind is DecisionKind.ROLLBACK and rolling_back:
        return DecisionEffect.TOOK_EFFECT  # what the person asked for is under way
    if hook_id == STOP_HOOK_ID:
        return DecisionEffect.OVERTAKEN if snapshot.status.is_terminal else DecisionEffect.NOT_YET
    hook = next((h for h in snapshot.hooks if h.hook_id == hook_id), None)
    if hook is not None:
        if hook.status == HookStatus.AWAITING_ACTION:
            return DecisionEffect.NOT_YET if snapshot.status is EcsStatus.IN_PROGRESS else DecisionEffect.OVERTAKEN
        return DecisionEffect.TOOK_EFFECT if hook.status == OWN_OUTCOME[kind] else DecisionEffect.OVERTAKEN
    # The pause left lifecycleHookDetails: the deployment went past it, forwards (continued) or backwards.
    if kind is DecisionKind.APPROVE and not rolling_back and snapshot.status is not EcsStatus.STOPPED:
        return DecisionEffect.TOOK_EFFECT
    return DecisionEffect.OVERTAKEN
