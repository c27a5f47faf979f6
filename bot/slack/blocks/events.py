"""Thread replies narrating a deployment, one per event; reminders; incident-channel announcements (pure)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import Block, SectionBlock

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.durations import humanize
from bot.domain.enums import DecisionKind, DeploymentStatus, EventKind, HookTargetType, RollbackCause, TimeoutAction
from bot.domain.readmodels import AwaitingHook, DeploymentView, EventView
from bot.domain.text import clip, escape
from bot.slack.blocks.base import (
    FIELD_CHARS,
    Message,
    context,
    finish,
    md,
    pct,
    section,
    slack_date,
    user,
)
from bot.slack.blocks.parts import (
    STATUS_EMOJI,
    STATUS_WORDS,
    change_line,
    duration_of,
    hook_phrase,
    requester,
    short_image,
    short_taskdef,
    stage_label,
    timeout_action_of,
    timeout_consequence,
    timeout_line,
    title,
    who_may_approve,
)

DETAIL_CHARS = 600
_URL = re.compile(r"^https?://[^\s|<>]+$")
Line = tuple[str, list[str]]  # the narrated line and optional context lines


def _text(detail: Mapping[str, Any], *keys: str) -> str | None:
    value = next((detail[k] for k in keys if detail.get(k)), None)
    return clip(escape(str(value)), DETAIL_CHARS) if value is not None else None


def _hook_name(detail: Mapping[str, Any]) -> str:
    arn = str(detail.get("target_arn") or "")
    name = arn.rsplit(":", 1)[-1] if ":function:" in arn else arn.rsplit("/", 1)[-1]
    return f"`{escape(name)}`" if name else "a lifecycle hook"


def cause_phrase(view: DeploymentView, detail: Mapping[str, Any], actor: str | None) -> str:
    """Why a deployment rolled back or stopped, in words (user, alarm, circuit breaker, hook, timeout, ECS…)."""
    cause = RollbackCause.of(detail.get("cause"))
    if cause is RollbackCause.USER:
        return f"requested by {user(actor or detail.get('by'))}"
    if cause is RollbackCause.ALARM:
        names = detail.get("alarm_names") or [detail.get("alarm_name") or "?"]
        return "CloudWatch alarm " + ", ".join(f"`{escape(str(n))}`" for n in names[:5]) + " went off"
    if cause is RollbackCause.CIRCUIT_BREAKER:
        count, threshold = detail.get("failure_count"), detail.get("threshold")
        numbers = f" ({count} failed tasks, threshold {threshold})" if count is not None else ""
        return f"the deployment circuit breaker tripped{numbers}"
    if cause is RollbackCause.HOOK_FAILURE:
        return f"lifecycle hook {_hook_name(detail)} failed at {stage_label(detail.get('stage')).lower()}"
    if cause is RollbackCause.TIMEOUT:
        return f"nobody approved in time ({stage_label(detail.get('stage')).lower()})"
    if cause is RollbackCause.SUPERSEDED:
        return "a newer deployment replaced it"
    reason = _text(detail, "reason", "rollback_reason")
    return f"ECS: {reason}" if reason else "ECS gave no reason"


def _user_reason(view: DeploymentView) -> str | None:
    reasons = [d.reason for d in view.decisions if d.kind is DecisionKind.ROLLBACK and d.reason]
    return clip(escape(reasons[-1]), DETAIL_CHARS) if reasons else None


def _started(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    return f"▶️ ECS started deploying *{escape(view.service_key)}*", []


def _start_failed(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    reason = _text(e.detail, "reason", "message", "error", "code") or "no reason given"
    return f"❌ ECS refused to start the deployment: {reason}", []


def _stage_entered(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    return f"▶ {stage_label(e.detail.get('stage') or e.stage)}", []


def _stage_passed(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    return f"✓ {stage_label(e.detail.get('stage') or e.stage)} _(ran between two checks)_", []


def _traffic(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    d = e.detail
    prod, test = float(d.get("production_weight") or 0.0), float(d.get("test_weight") or 0.0)
    if d.get("direction") == "rb":
        return f"↩️ Traffic going back to blue: production green {pct(prod)} · test green {pct(test)}", []
    if "step" in d:
        step = f" (step {d['step']} of {d['steps']})" if d.get("steps", 1) > 1 else ""
        return f"🔀 Production traffic → green {pct(prod)}{step}", []
    return f"🔀 Test traffic → green {pct(test)}", []


def _awaiting_hook(view: DeploymentView, d: Mapping[str, Any]) -> AwaitingHook:
    known = next((h for h in view.awaiting if h.hook_id == d.get("hook_id")), None)
    if known is not None:
        return known
    expires = d.get("expires_at")
    when = datetime.fromisoformat(expires) if isinstance(expires, str) and expires else None
    return AwaitingHook(str(d.get("hook_id") or "-"), d.get("stage"), when, d.get("timeout_action"))


def _hook_awaiting(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    hook = _awaiting_hook(view, e.detail)
    line = f"✋ Approval needed {hook_phrase(view, hook.stage, e.detail)} — {who_may_approve(view, s)}"
    return line, ["Approve or roll back with the buttons on the message above.", timeout_line(view, hook, s)]


def _hook_resolved(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    d = e.detail
    where = stage_label(d.get("stage")).lower()
    outcome, by = d.get("outcome"), d.get("resolved_by") or e.actor
    if d.get("target_type") not in (None, HookTargetType.PAUSE):
        ok = outcome == "succeeded"
        return f"{'✅' if ok else '❌'} Hook {_hook_name(d)} {'succeeded' if ok else outcome} ({where})", []
    if outcome == "timed_out":
        action = timeout_action_of(_awaiting_hook(view, d), s)
        for past in view.events:
            if past.kind is EventKind.HOOK_AWAITING and past.detail.get("hook_id") == d.get("hook_id"):
                action = timeout_action_of(_awaiting_hook(view, past.detail), s)
        then = "continuing without approval" if action is TimeoutAction.CONTINUE else "rolling back"
        return f"⌛ Approval timed out ({where}) → {then}", []
    if outcome == "succeeded":
        return (f"✅ Approved by {user(by)} — ECS continues" if by else "✅ Pause released outside DeployBot"), []
    return (f"🛑 Rollback requested by {user(by)}" if by else f"🛑 Pause failed ({where})"), []


def _bake(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    d = e.detail
    minutes, end = d.get("minutes"), d.get("until")
    ends = f", ends {slack_date(datetime.fromisoformat(end))}" if isinstance(end, str) and end else ""
    length = f" {minutes} min" if minutes is not None else ""
    if d.get("kind") == "step":
        where = f" at green {pct(d.get('production_weight'))} (step {d.get('step')} of {d.get('steps')})"
        return f"⏱ Step bake{length}{where}{ends}", []
    return f"🍞 Bake time{length}: both revisions run, rollback is instant{ends}", []


def _rollback(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    d = e.detail
    line = f"↩️ Rolling back: {cause_phrase(view, d, e.actor)}"
    extra = [
        f"Reason: {r}" for r in [_user_reason(view)] if r and RollbackCause.of(d.get("cause")) is RollbackCause.USER
    ]
    ecs = _text(d, "reason", "rollback_reason")
    return line, [*extra, *([f"ECS: {ecs}"] if ecs else [])]


def _finished(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    d = e.detail
    status = _status(d.get("outcome"), view.status)
    # The view's ECS start and end, so the thread says exactly what the root message, history and App Home say.
    seconds = d.get("duration_seconds")
    took_text = duration_of(view) or (humanize_seconds(seconds) if isinstance(seconds, int | float) else None)
    took = f" {'in' if status is DeploymentStatus.SUCCEEDED else 'after'} {took_text}" if took_text else ""
    line = f"{STATUS_EMOJI[status]} *{escape(view.service_key)}* {STATUS_WORDS[status]}{took}"
    if status is not DeploymentStatus.SUCCEEDED and RollbackCause.of(d.get("cause")) not in (
        None,
        RollbackCause.SUPERSEDED,
    ):
        line += f": {cause_phrase(view, d, e.actor)}"
    return line, [f"History: `/deploy history {escape(view.service_key)}`"]


def humanize_seconds(seconds: float) -> str:
    """`55m`, `1h 5m` from seconds."""
    return humanize(timedelta(seconds=seconds))


def _status(value: Any, fallback: DeploymentStatus) -> DeploymentStatus:
    try:
        return DeploymentStatus(str(value))
    except ValueError:
        return fallback


def _decision(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    d = e.detail
    who = user(e.actor or d.get("user_id") or d.get("user"))
    kind = str(d.get("decision") or d.get("kind") or "")
    reason = _text(d, "reason")
    if kind == DecisionKind.APPROVE:
        return f"👍 {who} approved — waiting for ECS to continue", []
    return f"🛑 {who} asked for a rollback", [f"Reason: {reason}"] if reason else []


def _locked(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    reason = _text(e.detail, "reason")
    line = f"🔒 *{escape(view.service_key)}* locked by {user(e.actor or e.detail.get('by'))}"
    return line + (f": {reason}" if reason else ""), []


def _unlocked(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    return f"🔓 *{escape(view.service_key)}* unlocked by {user(e.actor or e.detail.get('by'))}", []


Renderer = Callable[[DeploymentView, EventView, ServiceConfig | None, datetime], Line]
RENDERERS: Mapping[EventKind, Renderer] = {
    EventKind.STARTED: _started,
    EventKind.START_FAILED: _start_failed,
    EventKind.STAGE_ENTERED: _stage_entered,
    EventKind.STAGE_PASSED: _stage_passed,
    EventKind.TRAFFIC_MOVED: _traffic,
    EventKind.HOOK_AWAITING: _hook_awaiting,
    EventKind.HOOK_RESOLVED: _hook_resolved,
    EventKind.BAKE_STARTED: _bake,
    EventKind.ROLLBACK_STARTED: _rollback,
    EventKind.FINISHED: _finished,
    EventKind.DECISION: _decision,
    EventKind.LOCKED: _locked,
    EventKind.UNLOCKED: _unlocked,
}
NOT_NARRATED = frozenset({EventKind.ACCEPTED, EventKind.REFUSED})  # the root message / the audit log say it


def _reply(view: DeploymentView, line: str, extra: list[str]) -> Message:
    blocks: list[Block] = [section(line)]
    if extra:
        blocks.append(context(*extra))
    return finish(f"{title(view)}: {line}", blocks)


def event_message(
    view: DeploymentView, event: EventView, service: ServiceConfig | None, now: datetime
) -> Message | None:
    """The thread reply narrating `event`, or None for kinds not narrated (ACCEPTED, REFUSED).

    A REMINDER event renders as `reminder_message` (detail `reminder: waiting`) or `timeout_warning_message`
    (`reminder: timeout`), so post either the event or the direct builder, never both.
    """
    if event.kind is EventKind.REMINDER:
        hook = _awaiting_hook(view, event.detail)
        warning = event.detail.get("reminder") == "timeout" or event.detail.get("kind") == "warning"
        if warning:
            left = event.detail.get("seconds_left")
            return timeout_warning_message(view, hook, service, float(left) if left is not None else 15 * 60.0)
        return reminder_message(view, hook, service)
    renderer = RENDERERS.get(event.kind)
    if renderer is None:
        return None
    line, extra = renderer(view, event, service, now)
    return _reply(view, line, extra)


def reminder_message(view: DeploymentView, hook: AwaitingHook, service: ServiceConfig | None) -> Message:
    """A reminder in the thread that a pause still waits, mentioning the approvers."""
    line = (
        f"⏰ Reminder: *{escape(view.service_key)}* is still waiting for approval "
        f"{hook_phrase(view, hook.stage)} — {who_may_approve(view, service)}"
    )
    return _reply(view, line, [timeout_line(view, hook, service)])


def timeout_warning_message(
    view: DeploymentView, hook: AwaitingHook, service: ServiceConfig | None, seconds_left: float
) -> Message:
    """`⏰ 15 minutes left before catalog rolls back automatically`, mentioning the approvers.

    `seconds_left` was measured on the bot's clock when the warning fell due (see `bot.domain.reminders`).
    """
    minutes = max(1, math.ceil(seconds_left / 60))
    unit = "minute" if minutes == 1 else "minutes"
    consequence = timeout_consequence(timeout_action_of(hook, service), escape(view.service_key))
    line = f"⏰ {minutes} {unit} left before {consequence} — {who_may_approve(view, service)}"
    return _reply(view, line, [timeout_line(view, hook, service)])


def incident_announcement(
    view: DeploymentView, event: EventView, service: ServiceConfig | None, permalink: str | None
) -> Message:
    """For the incident channel: who rolled back what and why, with a link to the deployment thread."""
    cause = RollbackCause.of(event.detail.get("cause")) or (RollbackCause.USER if event.actor else RollbackCause.ECS)
    why = cause_phrase(view, {**event.detail, "cause": cause}, event.actor)
    name = escape(view.service_key)
    if cause is RollbackCause.USER:
        line = f"↩️ {user(event.actor or event.detail.get('by'))} rolled back *{name}*"
    else:
        how = " automatically" if cause.is_automatic else ""
        line = f"🚨 *{name}* is rolling back{how}: {why}"
    reason = _user_reason(view) if cause is RollbackCause.USER else None
    fields = [f"*Deployment*\n#{view.id} · {escape(title(view))}", f"*Requested by*\n{requester(view)}"]
    change = change_line(short_image(view.image_to), short_image(view.image_from)) or change_line(
        short_taskdef(view.taskdef_to), short_taskdef(view.taskdef_from)
    )
    if change:
        fields.append(f"*Going back*\n{change}")
    blocks: list[Block] = [section(line), SectionBlock(fields=[md(f, FIELD_CHARS) for f in fields])]
    if reason:
        blocks.append(section(f"*Reason:* {reason}"))
    link = f"<{permalink}|Open the deployment thread>" if permalink and _URL.match(permalink) else None
    blocks.append(context(*(x for x in (link, f"{escape(view.cluster)}/{escape(view.service)}") if x)))
    return finish(line + (f": {reason}" if reason else ""), blocks)
