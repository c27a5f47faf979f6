"""The deployment's live root message, its buttons and the button-value contract (pure)."""

from __future__ import annotations

import re
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    DividerBlock,
    HeaderBlock,
    SectionBlock,
)

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import DecisionKind, DeploymentStatus
from bot.domain.readmodels import AwaitingHook, DecisionView, DeploymentView
from bot.domain.text import clip, escape
from bot.slack.blocks.base import (
    FIELD_CHARS,
    HEADER_CHARS,
    Message,
    context,
    finish,
    md,
    plain,
    section,
    slack_date,
    user,
)
from bot.slack.blocks.parts import (
    STATUS_EMOJI,
    STATUS_WORDS,
    approval_effect,
    change_line,
    checklist,
    duration_of,
    hook_phrase,
    requester,
    short_image,
    short_taskdef,
    stage_label,
    step_note,
    strategy_text,
    timeout_line,
    title,
    traffic_lines,
    upper_first,
    who_may_approve,
)

APPROVE_ACTION = "deploy_approve"
ROLLBACK_ACTION = "deploy_rollback"
NO_HOOK = "-"
REASON_CHARS = 1500
STATUS_REASON_CHARS = 600
MAX_DECISION_LINES = 5
_VALUE = re.compile(r"^([1-9][0-9]{0,17})\|([A-Za-z0-9][A-Za-z0-9._:/-]{0,254}|-)$")
ROLLBACK_ABLE = (DeploymentStatus.IN_PROGRESS, DeploymentStatus.AWAITING_APPROVAL)


def actions_block_id(view: DeploymentView) -> str:
    """`dep-{id}-v{version}`: new on every re-render, so a click on a stale message is recognisable."""
    return f"dep-{view.id}-v{view.version}"


def button_value(deployment_id: int, hook_id: str | None) -> str:
    """`{deployment_id}|{hook_id}`, or `{deployment_id}|-` when no hook is concerned."""
    return f"{deployment_id}|{hook_id or NO_HOOK}"


def parse_button_value(value: object) -> tuple[int, str | None]:
    """(deployment id, hook id or None) from a button value; ValueError on anything malformed or tampered."""
    if not isinstance(value, str):
        raise ValueError("button value is not text")
    match = _VALUE.match(value)
    if match is None:
        raise ValueError(f"malformed button value {value[:40]!r}")
    hook = match.group(2)
    return int(match.group(1)), None if hook == NO_HOOK else hook


def pending_hook(view: DeploymentView) -> AwaitingHook | None:
    """The first hook awaiting a person that nobody has decided on yet."""
    if view.status is not DeploymentStatus.AWAITING_APPROVAL:
        return None
    return next((h for h in view.awaiting if view.decision_for(h.hook_id) is None), None)


def status_line(view: DeploymentView) -> str:
    """`✋ Waiting for approval before production step 1 of 2 (green 10 %)`, `⏳ In progress — Bake time`…"""
    words = STATUS_WORDS[view.status]
    emoji = STATUS_EMOJI[view.status]
    hook = pending_hook(view) or (view.awaiting[0] if view.awaiting else None)
    if view.status is DeploymentStatus.AWAITING_APPROVAL and hook is not None:
        return f"{emoji} {upper_first(words)} {hook_phrase(view, hook.stage, hook.next_step)}"
    if view.status is DeploymentStatus.IN_PROGRESS and view.lifecycle_stage is not None:
        note = step_note(view)
        where = stage_label(view.lifecycle_stage) + (f" ({note})" if note else "")
        return f"{emoji} {upper_first(words)} — {where}"
    return f"{emoji} {upper_first(words)}"


def summary_text(view: DeploymentView, now: datetime) -> str:
    """The notification text: `catalog canary 10 % — waiting for approval before production step 1 of 2 …`."""
    line = status_line(view).split(" ", 1)[1]
    line = line[0].lower() + line[1:]
    if not view.is_active:
        took = duration_of(view)
        line += f" in {took}" if took and view.status is DeploymentStatus.SUCCEEDED else ""
        line += f" after {took}" if took and view.status is not DeploymentStatus.SUCCEEDED else ""
    return f"{title(view)} — {line}"


def decision_line(decision: DecisionView) -> str:
    """`Approved by <@U…> · <date>` or `Rollback requested by <@U…> · <date> — reason`."""
    what = "✅ Approved by" if decision.kind is DecisionKind.APPROVE else "🛑 Rollback requested by"
    line = f"{what} {user(decision.user_id)} · {slack_date(decision.decided_at, '{time}')}"
    return line + (f" — {escape(decision.reason)}" if decision.reason else "")


def approve_button(view: DeploymentView, hook: AwaitingHook) -> ButtonElement:
    """Approve (primary) with a confirm dialog naming what happens next."""
    confirm = ConfirmObject(
        title=plain("Approve this deployment?", 100),
        text=plain(f"{title(view)}: {approval_effect(view, hook.stage, hook.next_step)}.", 300),
        confirm=plain("Approve", 30),
        deny=plain("Cancel", 30),
    )
    return ButtonElement(
        text=plain("Approve", 75),
        action_id=APPROVE_ACTION,
        value=button_value(view.id, hook.hook_id),
        style="primary",
        confirm=confirm,
    )


def rollback_button(view: DeploymentView, hook: AwaitingHook | None) -> ButtonElement:
    """Roll back (danger) with a confirm dialog."""
    target = short_taskdef(view.taskdef_from) or short_image(view.image_from) or "the previous revision"
    confirm = ConfirmObject(
        title=plain(clip(f"Roll back {view.service_key}?", 100), 100),
        text=plain(f"All traffic goes back to {target} and this deployment stops. This cannot be undone.", 300),
        confirm=plain("Roll back", 30),
        deny=plain("Cancel", 30),
        style="danger",
    )
    return ButtonElement(
        text=plain("Roll back", 75),
        action_id=ROLLBACK_ACTION,
        value=button_value(view.id, hook.hook_id if hook else None),
        style="danger",
        confirm=confirm,
    )


def controls(view: DeploymentView, service: ServiceConfig | None, now: datetime) -> list[Block]:
    """Decisions taken, then the buttons (and who may press them) that fit the deployment's state."""
    blocks: list[Block] = []
    decided = [decision_line(d) for d in view.decisions[-MAX_DECISION_LINES:]]
    if decided:
        blocks.append(context(*decided))
    if view.status not in ROLLBACK_ABLE or any(d.kind is DecisionKind.ROLLBACK for d in view.decisions):
        return blocks
    hook = pending_hook(view)
    buttons = [approve_button(view, hook), rollback_button(view, hook)] if hook else [rollback_button(view, None)]
    blocks.append(ActionsBlock(block_id=actions_block_id(view), elements=buttons))
    if hook is not None:
        may = f"✋ May approve: {who_may_approve(view, service)}"
        blocks.append(context(may, timeout_line(view, hook, service)))
    return blocks


def outcome_line(view: DeploymentView, now: datetime) -> str:
    """`✅ Succeeded in 55m · finished <date> · history: /deploy history catalog`."""
    took = duration_of(view)
    verb = "in" if view.status is DeploymentStatus.SUCCEEDED else "after"
    parts = [
        f"{STATUS_EMOJI[view.status]} *{upper_first(STATUS_WORDS[view.status])}*" + (f" {verb} {took}" if took else "")
    ]
    if view.finished_at is not None:
        parts.append(f"finished {slack_date(view.finished_at)}")
    parts.append(f"history: `/deploy history {escape(view.service_key)}`")
    return " · ".join(parts)


def detail_fields(view: DeploymentView) -> list[str]:
    """The fields of the summary section: status, requester, image and task definition changes."""
    fields = [f"*Status*\n{status_line(view)}", f"*Requested by*\n{requester(view)}"]
    image = change_line(short_image(view.image_from), short_image(view.image_to))
    if image:
        fields.append(f"*Image*\n{image}")
    taskdef = change_line(short_taskdef(view.taskdef_from), short_taskdef(view.taskdef_to))
    if taskdef:
        fields.append(f"*Task definition*\n{taskdef}")
    return [clip(f, FIELD_CHARS) for f in fields]


def body_blocks(view: DeploymentView, now: datetime) -> list[Block]:
    """Everything between the header and the controls."""
    blocks: list[Block] = [SectionBlock(fields=[md(f, FIELD_CHARS) for f in detail_fields(view)])]
    bar = traffic_lines(view)
    if bar:
        blocks.append(section(bar))
    blocks.append(section(checklist(view)))
    if view.bake_until is not None and view.is_active:
        blocks.append(context(f"🍞 Bake ends {slack_date(view.bake_until)}"))
    if view.reason:
        blocks.append(section(f"*Reason:* {clip(escape(view.reason), REASON_CHARS)}"))
    if view.status_reason and not view.is_active:
        blocks.append(context(f"ECS: {clip(escape(view.status_reason), STATUS_REASON_CHARS)}"))
    return blocks


def footer(view: DeploymentView) -> str:
    """`#42 · prod/catalog · us-east-1 · rollback of #41`."""
    parts = [f"#{view.id}", escape(f"{view.cluster}/{view.service}"), escape(view.region)]
    if view.rollback_of_id is not None:
        parts.append(f"rollback of #{view.rollback_of_id}")
    return " · ".join(parts)


def root_blocks(view: DeploymentView, service: ServiceConfig | None, now: datetime) -> list[Block]:
    """The root message's blocks (also reused, without the header, by App Home)."""
    blocks: list[Block] = [HeaderBlock(text=plain(f"🚀 {view.service_key} · {strategy_text(view)}", HEADER_CHARS))]
    blocks += body_blocks(view, now)
    blocks += controls(view, service, now)
    if not view.is_active:
        blocks.append(section(outcome_line(view, now)))
    blocks += [DividerBlock(), context(footer(view))]
    return blocks


def root_message(view: DeploymentView, service: ServiceConfig | None, now: datetime) -> Message:
    """The deployment's live root message, edited in place as it progresses."""
    return finish(summary_text(view, now), root_blocks(view, service, now))
