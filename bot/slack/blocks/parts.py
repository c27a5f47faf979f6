"""Words and small pictures describing one deployment: labels, status, traffic bar, stage checklist (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.durations import humanize
from bot.domain.enums import DeploymentStatus, HookStage, LifecycleStage, Strategy, TimeoutAction
from bot.domain.machine.rules import STAGE_ORDER, next_step, production_steps, step_position, tenths
from bot.domain.readmodels import AwaitingHook, DeploymentView
from bot.domain.text import escape
from bot.slack.blocks.base import pct, principals, slack_date, user

STRATEGY_LABELS = {
    Strategy.ROLLING: "rolling",
    Strategy.BLUE_GREEN: "blue/green",
    Strategy.CANARY: "canary",
    Strategy.LINEAR: "linear",
}
STATUS_EMOJI = {
    DeploymentStatus.REQUESTED: "⏳",
    DeploymentStatus.IN_PROGRESS: "⏳",
    DeploymentStatus.AWAITING_APPROVAL: "✋",
    DeploymentStatus.ROLLING_BACK: "↩️",
    DeploymentStatus.SUCCEEDED: "✅",
    DeploymentStatus.ROLLED_BACK: "⏪",
    DeploymentStatus.ROLLBACK_FAILED: "❌",
    DeploymentStatus.FAILED: "❌",
    DeploymentStatus.STOPPED: "⏹",
    DeploymentStatus.SUPERSEDED: "⏹",
    DeploymentStatus.LOST: "❔",
}
STATUS_WORDS = {
    DeploymentStatus.REQUESTED: "starting",
    DeploymentStatus.IN_PROGRESS: "in progress",
    DeploymentStatus.AWAITING_APPROVAL: "waiting for approval",
    DeploymentStatus.ROLLING_BACK: "rolling back",
    DeploymentStatus.SUCCEEDED: "succeeded",
    DeploymentStatus.ROLLED_BACK: "rolled back",
    DeploymentStatus.ROLLBACK_FAILED: "rollback failed",
    DeploymentStatus.FAILED: "failed to start",
    DeploymentStatus.STOPPED: "stopped",
    DeploymentStatus.SUPERSEDED: "superseded by a newer deployment",
    DeploymentStatus.LOST: "lost: ECS no longer knows this deployment",
}
STAGE_LABELS = {
    LifecycleStage.RECONCILE_SERVICE: "Reconcile service",
    LifecycleStage.PRE_SCALE_UP: "Pre scale-up",
    LifecycleStage.SCALE_UP: "Scale up green",
    LifecycleStage.POST_SCALE_UP: "Post scale-up",
    LifecycleStage.TEST_TRAFFIC_SHIFT: "Test traffic shift",
    LifecycleStage.POST_TEST_TRAFFIC_SHIFT: "Post test traffic shift",
    LifecycleStage.PRODUCTION_TRAFFIC_SHIFT: "Production traffic shift",
    LifecycleStage.POST_PRODUCTION_TRAFFIC_SHIFT: "Post production traffic shift",
    LifecycleStage.BAKE_TIME: "Bake time",
    LifecycleStage.CLEAN_UP: "Clean up blue",
}
ROLLING_PHRASES = {
    HookStage.PRE_SCALE_UP: "before any new task starts",
    HookStage.POST_SCALE_UP: "after the new tasks started",
}
HOOK_PHRASES = {
    HookStage.RECONCILE_SERVICE: "while reconciling the service",
    HookStage.PRE_SCALE_UP: "before green scales up",
    HookStage.POST_SCALE_UP: "after green scaled up",
    HookStage.TEST_TRAFFIC_SHIFT: "during the test traffic shift",
    HookStage.POST_TEST_TRAFFIC_SHIFT: "after test traffic moved to green, before production",
    HookStage.PRODUCTION_TRAFFIC_SHIFT: "during the production traffic shift",
    HookStage.POST_PRODUCTION_TRAFFIC_SHIFT: "after production traffic moved to green",
}
BAR_CELLS = 10
FULL, EMPTY = "▰", "▱"
_TASKDEF = re.compile(r"(?:task-definition/)?([A-Za-z0-9_-]+:\d+)$")


def strategy_text(view: DeploymentView) -> str:
    """`canary 10 %`, `linear 20 %`, `blue/green`, `rolling`."""
    label = STRATEGY_LABELS[view.strategy]
    step = view.step_percent
    return f"{label} {pct(step)}" if step is not None else label


def title(view: DeploymentView) -> str:
    """`catalog canary 10 %`: the start of every notification text."""
    return f"{view.service_key} {strategy_text(view)}"


def stage_label(stage: str | LifecycleStage | None) -> str:
    """A human name of a lifecycle or hook stage."""
    if stage is None:
        return "unknown stage"
    if stage == HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT:
        return "Before production traffic shift"
    try:
        return STAGE_LABELS[LifecycleStage(stage)]
    except ValueError:
        return escape(str(stage).replace("_", " ").capitalize())


def short_image(image: str | None) -> str | None:
    """`v2.4.1` from `…/catalog:v2.4.1`, `@sha256:0123456789ab` from a digest, else the last path part."""
    if not image:
        return None
    if "@" in image:
        digest = image.split("@", 1)[1]
        algo, _, value = digest.partition(":")
        return f"@{algo}:{value[:12]}" if value else f"@{digest}"
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else last


def short_taskdef(taskdef: str | None) -> str | None:
    """`family:rev` from a task definition ARN (or as given)."""
    if not taskdef:
        return None
    match = _TASKDEF.search(taskdef)
    return match.group(1) if match else taskdef.rsplit("/", 1)[-1]


def change_line(before: str | None, after: str | None) -> str | None:
    """`` `a` → `b` `` with escaping; None when nothing is known."""
    if not before and not after:
        return None
    left = f"`{escape(before)}`" if before else "?"
    right = f"`{escape(after)}`" if after else "(unchanged)"
    return f"{left} → {right}"


def bar_cells(green: float) -> int:
    """Cells of a 10-cell bar for green's share: rounded half up, full only at 100 % and empty below 5 %."""
    cells = math.floor(tenths(green) / 100 + 0.5)
    return min(cells, BAR_CELLS - 1) if tenths(green) < 1000 else BAR_CELLS


def traffic_bar(green: float | None) -> str:
    """`blue ▰▰▰▰▰▰▰▰▰▱ 90 % · green 10 %` for green's share of traffic."""
    share = max(0.0, min(100.0, green or 0.0))
    cells = bar_cells(share)
    bar = FULL * (BAR_CELLS - cells) + EMPTY * cells
    return f"blue {bar} {pct(100.0 - share)} · green {pct(share)}"


def traffic_lines(view: DeploymentView) -> str | None:
    """The production bar, plus test traffic when it differs; None for ROLLING; a note for a headless service."""
    if view.strategy is Strategy.ROLLING:
        return None
    if view.headless:
        return "*Traffic*  none to shift: no load balancer, so ECS swaps the tasks"
    if view.status is DeploymentStatus.LOST:  # the last weights seen may no longer hold: say only that
        last = pct(view.production_weight)
        return f"*Production traffic*  unknown since ECS lost this deployment (last seen: green {last})"
    lines = [f"*Production traffic*  {traffic_bar(view.production_weight)}"]
    if view.test_weight is not None and tenths(view.test_weight) != tenths(view.production_weight or 0.0):
        lines.append(f"*Test traffic*  {traffic_bar(view.test_weight)}")
    return "\n".join(lines)


def step_note(view: DeploymentView) -> str | None:
    """`green 10 % · step 1 of 2` for the production shift of stepped strategies."""
    weight = view.production_weight or 0.0
    if view.strategy in (Strategy.CANARY, Strategy.LINEAR) and weight > 0:
        k, n = step_position(view.strategy, view.step_percent, weight)
        return f"green {pct(weight)} · step {k} of {n}"
    return None


def stage_marks(view: DeploymentView) -> list[tuple[str, LifecycleStage]]:
    """(mark, stage) for each stage of the strategy: ✓ done, ▶ current, ✗ where it stopped, · to come."""
    stages = [s for s in STAGE_ORDER if s is not LifecycleStage.RECONCILE_SERVICE or s in view.stages_seen]
    succeeded = view.status is DeploymentStatus.SUCCEEDED
    current = view.lifecycle_stage
    marks = []
    for stage in stages:
        if succeeded or (stage in view.stages_seen and stage is not current):
            mark = "✓"
        elif stage is current:
            # Lost: ECS stopped answering there; it may have gone on, so no ✗ claiming it stopped.
            mark = "▶" if view.is_active else ("?" if view.status is DeploymentStatus.LOST else "✗")
        else:
            mark = "·"
        marks.append((mark, stage))
    return marks


def checklist(view: DeploymentView) -> str:
    """The stage checklist (advanced strategies) or a one-line progress (ROLLING)."""
    if view.strategy is Strategy.ROLLING:
        return rolling_progress(view)
    lines = []
    for mark, stage in stage_marks(view):
        line = f"{mark} {STAGE_LABELS[stage]}"
        note = _stage_note(view, stage)
        lines.append(f"{line}  _{note}_" if note else line)
    return "\n".join(lines)


def production_note(view: DeploymentView) -> str | None:
    """Where the production shift is: `green 10 % · step 2 of 2 waits for approval`, `… approved`, `… step 1 of 2`."""
    guard = next((h for h in view.awaiting if h.stage == HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT), None)
    if guard is None or view.strategy not in (Strategy.CANARY, Strategy.LINEAR):
        return step_note(view)
    nxt = guard.next_step or next_step(view.strategy, view.step_percent, view.production_weight)
    state = "approved" if view.decision_for(guard.hook_id) is not None else "waits for approval"
    return f"green {pct(view.production_weight)} · step {nxt['k']} of {nxt['n']} {state}"


def _stage_note(view: DeploymentView, stage: LifecycleStage) -> str | None:
    approvals = set(view.approval_stages)
    if stage is LifecycleStage.PRODUCTION_TRAFFIC_SHIFT:
        parts = [production_note(view) if stage is view.lifecycle_stage else None]
        if HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT in approvals:
            steps = len(production_steps(view.strategy, view.step_percent))
            parts.append("approval before each step" if steps > 1 else "approval first")
        return " · ".join(p for p in parts if p) or None
    if stage.value in approvals:
        return "approval"
    return None


def rolling_progress(view: DeploymentView) -> str:
    """ROLLING has no stages: one line saying where it is."""
    if view.status is DeploymentStatus.SUCCEEDED:
        return "✓ Rolling update complete: every task runs the new revision"
    if view.status is DeploymentStatus.ROLLING_BACK:
        return "↩️ Rolling update reversing: tasks go back to the previous revision"
    if view.is_active:
        return "▶ Rolling update: ECS replaces tasks a few at a time"
    return f"✗ Rolling update ended: {STATUS_WORDS[view.status]}"


def hook_phrase(view: DeploymentView, stage: str | None, step: Mapping[str, Any] | None = None) -> str:
    """Where a pause waits: `before production step 1 of 2 (green 10 %)`, `after test traffic moved …`.

    `step` is the step the pause guards as the machine fixed it ({k, n, percent}); without it, the next one.
    """
    if stage == HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT:
        nxt = step or next_step(view.strategy, view.step_percent, view.production_weight)
        if nxt["n"] <= 1:
            return "before production traffic moves to green"
        return f"before production step {nxt['k']} of {nxt['n']} (green {pct(nxt['percent'])})"
    if view.strategy is Strategy.ROLLING and stage in ROLLING_PHRASES:  # no green: the new tasks replace the old
        return ROLLING_PHRASES[HookStage(stage)]
    try:
        return HOOK_PHRASES[HookStage(stage)] if stage else "at a pause"
    except ValueError:
        return f"at {stage_label(stage)}"


def approval_effect(view: DeploymentView, stage: str | None, step: Mapping[str, Any] | None = None) -> str:
    """What approving a pause lets ECS do next, in words (`step` as in `hook_phrase`)."""
    if stage == HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT:
        nxt = step or next_step(view.strategy, view.step_percent, view.production_weight)
        which = f" (step {nxt['k']} of {nxt['n']})" if nxt["n"] > 1 else ""
        return f"production traffic moves to green {pct(nxt['percent'])}{which}"
    return f"the deployment continues past {stage_label(stage).lower()}"


def timeout_action_of(hook: AwaitingHook | None, service: ServiceConfig | None) -> TimeoutAction:
    """The hook's timeout action, else the catalog's."""
    raw = hook.timeout_action if hook is not None else None
    if raw in TimeoutAction.__members__.values():
        return TimeoutAction(str(raw))
    return service.timeout_action if service is not None else TimeoutAction.ROLLBACK


def timeout_consequence(action: TimeoutAction, service_key: str) -> str:
    """What happens when a pause expires, in words."""
    if action is TimeoutAction.CONTINUE:
        return f"{service_key} continues automatically without approval"
    return f"{service_key} rolls back automatically"


def who_may_approve(view: DeploymentView, service: ServiceConfig | None) -> str:
    """`<!subteam^S…> <@U…> · not the requester`, or a plain note when the catalog names nobody."""
    names = principals(service.approvers) if service is not None and service.approvers else "any deployer"
    if service is not None and service.four_eyes:
        return f"{names} · not the requester"
    return names


def timeout_line(view: DeploymentView, hook: AwaitingHook, service: ServiceConfig | None) -> str:
    """`Times out <date> → catalog rolls back automatically`: ECS's expiresAt, never measured on our clock."""
    action = timeout_consequence(timeout_action_of(hook, service), escape(view.service_key))
    if hook.expires_at is None:
        return f"If nobody decides in time → {action}"
    return f"Times out {slack_date(hook.expires_at)} → {action}"


def requester(view: DeploymentView) -> str:
    """A mention of the person who asked for the deployment."""
    return user(view.requested_by)


def upper_first(words: str) -> str:
    """`Lost: ECS no longer …` (str.capitalize would lower-case `ECS`)."""
    return words[:1].upper() + words[1:]


def duration_of(view: DeploymentView) -> str | None:
    """How long ECS ran it, by ECS's clock: `1m 12s`; None while it runs or when ECS never ran it."""
    took = view.took
    return humanize(took) if took is not None else None


def requested_line(view: DeploymentView, now: datetime) -> str:
    """`by <@U…> · 14:02 (3m ago)`: when the person asked, on the bot's clock at both ends."""
    ago = humanize(view.requested_ago(now))
    return f"by {requester(view)} · {slack_date(view.created_at, '{time}')} ({ago} ago)"
