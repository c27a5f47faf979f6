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
from bot.domain.enums import DecisionKind, DeploymentStatus, EventKind, HookStage, RollbackCause, Telling, TimeoutAction
from bot.domain.machine.rules import next_step
from bot.domain.readmodels import AwaitingHook, DeploymentView, EventView
from bot.domain.telling import telling
from bot.domain.text import clip, escape
from bot.slack.blocks.base import (
    FIELD_CHARS,
    USER_ID,
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
CHANNEL = re.compile(r"^[CG][A-Z0-9]{2,}$")
Line = tuple[str, list[str]]  # the narrated line and optional context lines


def _text(detail: Mapping[str, Any], *keys: str) -> str | None:
    value = next((detail[k] for k in keys if detail.get(k)), None)
    return clip(escape(str(value)), DETAIL_CHARS) if value is not None else None


def _hook_name(detail: Mapping[str, Any]) -> str:
    arn = str(detail.get("target_arn") or "")
    name = arn.rsplit(":", 1)[-1] if ":function:" in arn else arn.rsplit("/", 1)[-1]
    return f"`{escape(name)}`" if name else "a lifecycle hook"


def rollback_requester(view: DeploymentView, detail: Mapping[str, Any], actor: str | None) -> str | None:
    """The person who asked for a rollback: the event's actor, its `by`, else the last rollback decision."""
    decided = [d.user_id for d in view.decisions if d.kind is DecisionKind.ROLLBACK]
    return actor or detail.get("by") or (decided[-1] if decided else None)


def cause_phrase(view: DeploymentView, detail: Mapping[str, Any], actor: str | None) -> str:
    """Why a deployment rolled back or stopped, in words: always a person or a cause, never "someone"."""
    cause = RollbackCause.of(detail.get("cause"))
    if cause is RollbackCause.USER:
        who = rollback_requester(view, detail, actor)
        return f"requested by {user(who)}" if who else "requested outside DeployBot"
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
    change = change_line(short_image(view.image_from), short_image(view.image_to)) or change_line(
        short_taskdef(view.taskdef_from), short_taskdef(view.taskdef_to)
    )
    return f"▶️ ECS started deploying *{escape(view.service_key)}*" + (f": {change}" if change else ""), []


def _start_failed(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    reason = _text(e.detail, "reason", "message", "error", "code") or "no reason given"
    return f"❌ ECS refused to start the deployment: {reason}", []


def _bake_words(d: Mapping[str, Any]) -> tuple[str, str]:
    """(` 5 min`, `, ends <date>`): the bake's length and end (ECS's updatedAt plus the bake), each maybe empty."""
    minutes, end = d.get("minutes"), d.get("until")
    ends = f", ends {slack_date(datetime.fromisoformat(end))}" if isinstance(end, str) and end else ""
    return (f" {minutes} min" if minutes is not None else ""), ends


def _event(view: DeploymentView, kind: EventKind, key: str) -> EventView | None:
    return next((e for e in view.events if e.kind is kind and e.key == key), None)


def _traffic(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    # Told only for a production step nobody approved here; its step bake (same pass) is folded in.
    d = e.detail
    prod = float(d.get("production_weight") or 0.0)
    step = f" (step {d['step']} of {d['steps']})" if d.get("steps", 1) > 1 else ""
    bake = _event(view, EventKind.BAKE_STARTED, f"bake:step:{prod:.1f}")
    baking = "bake{}{}".format(*_bake_words(bake.detail)) if bake else ""
    return f"🔀 Production traffic → green {pct(prod)}{step}" + (f" · {baking}" if baking else ""), []


def _awaiting_hook(view: DeploymentView, d: Mapping[str, Any]) -> AwaitingHook:
    known = next((h for h in view.awaiting if h.hook_id == d.get("hook_id")), None)
    if known is not None:
        return known
    expires = d.get("expires_at")
    when = datetime.fromisoformat(expires) if isinstance(expires, str) and expires else None
    return AwaitingHook(str(d.get("hook_id") or "-"), d.get("stage"), when, d.get("timeout_action"), d.get("next_step"))


def _awaited(view: DeploymentView, hook_id: object) -> Mapping[str, Any]:
    """What the HOOK_AWAITING event of a pause said (its stage and the step it guards)."""
    found = next(
        (e for e in view.events if e.kind is EventKind.HOOK_AWAITING and e.detail.get("hook_id") == hook_id), None
    )
    return found.detail if found else {}


def _hook_awaiting(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    hook = _awaiting_hook(view, e.detail)
    where = hook_phrase(view, hook.stage, e.detail.get("next_step") or hook.next_step)
    line = f"✋ Approval needed {where} — {who_may_approve(view, s)}"
    return line, ["Approve or roll back with the buttons on the message above.", timeout_line(view, hook, s)]


def _hook_resolved(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    # Told only when nobody here decided: the pause timed out, or was released outside DeployBot.
    d = e.detail
    where = stage_label(d.get("stage")).lower()
    if d.get("outcome") == "timed_out":
        action = timeout_action_of(_awaiting_hook(view, {**_awaited(view, d.get("hook_id")), **d}), s)
        then = "continuing without approval" if action is TimeoutAction.CONTINUE else "rolling back"
        return f"⌛ Nobody approved in time ({where}) → {then}", []
    return f"✅ Pause released outside DeployBot ({where})", []


def _bake(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    # Told only for the final bake; a step bake is folded into its traffic line.
    length, ends = _bake_words(e.detail)
    return f"🍞 Bake time{length}: both revisions run, rollback is instant{ends}", []


def _rollback(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    # Told only when no person asked for it here (alarm, circuit breaker, failed hook, ECS).
    ecs = _text(e.detail, "reason", "rollback_reason")
    return f"↩️ Rolling back: {cause_phrase(view, e.detail, e.actor)}", [f"ECS: {ecs}"] if ecs else []


def outcome_line(view: DeploymentView, d: Mapping[str, Any], actor: str | None) -> str:
    """`⏪ *catalog* rolled back after 3m: requested by @carol`: the outcome, how long ECS took, the person or cause."""
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
        line += f": {cause_phrase(view, d, actor)}"
    return line


def _finished(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    # The requester is named in the last line so that their phone buzzes, however the deployment ended.
    mention = user(view.requested_by) if USER_ID.match(view.requested_by or "") else None
    line = outcome_line(view, e.detail, e.actor)
    context = [f"History: `/deploy history {escape(view.service_key)}`"]
    if _status(e.detail.get("outcome"), view.status) is DeploymentStatus.LOST:
        context.insert(0, _lost_words(view, e.detail))
    return line + (f" · cc {mention}" if mention else ""), context


def _lost_words(view: DeploymentView, d: Mapping[str, Any]) -> str:
    # Only what is known: ECS stopped answering for it; not whether it finished, nor where traffic went.
    passes = d.get("missing_passes")
    times = f" {passes} times in a row" if isinstance(passes, int) else ""
    key = escape(view.service_key)
    return (
        f"ECS answered this deployment as missing{times} (the service or the deployment was deleted), so I stopped "
        f"following it; I can't tell how it ended. `{key}` takes new deployments: `/deploy {key} …`"
    )


def humanize_seconds(seconds: float) -> str:
    """`55m`, `1h 5m` from seconds."""
    return humanize(timedelta(seconds=seconds))


def _status(value: Any, fallback: DeploymentStatus) -> DeploymentStatus:
    try:
        return DeploymentStatus(str(value))
    except ValueError:
        return fallback


def approved_what(view: DeploymentView, d: Mapping[str, Any], stage: str | None) -> str:
    """What an approval let through: `production step 1 of 2 (green 10 %)`, or the pause it released."""
    awaited = _awaited(view, d.get("hook_id"))
    hook = next((h for h in view.awaiting if h.hook_id == d.get("hook_id")), None)
    stage = awaited.get("stage") or (hook.stage if hook else None) or stage
    nxt = awaited.get("next_step") or (hook.next_step if hook else None)
    if nxt is None and hook is not None:  # still waiting, so the next step is the one it guards
        nxt = next_step(view.strategy, view.step_percent, view.production_weight)
    if stage == HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT and nxt:
        return (
            f"production step {nxt['k']} of {nxt['n']} (green {pct(nxt['percent'])})"
            if nxt["n"] > 1
            else ("production traffic moving to green")
        )
    return f"the pause {hook_phrase(view, stage)}"


def _decision(view: DeploymentView, e: EventView, s: ServiceConfig | None, now: datetime) -> Line:
    # One line per decision: who approved which step, or who asked for a rollback, from where and why.
    d = e.detail
    who = user(e.actor or d.get("user_id") or d.get("user"))
    if str(d.get("decision") or d.get("kind") or "") == DecisionKind.APPROVE:
        return f"✅ {who} approved {approved_what(view, d, e.stage)}", []
    channel = d.get("channel")
    where = (
        f" from <#{channel}>"
        if isinstance(channel, str) and CHANNEL.match(channel) and channel != view.channel_id
        else ""
    )
    reason = _text(d, "reason")
    return f"↩️ {who} asked for a rollback{where}" + (f": {reason}" if reason else ""), []


Renderer = Callable[[DeploymentView, EventView, ServiceConfig | None, datetime], Line]
# The kinds (and, via `telling`, the details) that are told in the thread; docs/ARCHITECTURE.md, "The thread".
RENDERERS: Mapping[EventKind, Renderer] = {
    EventKind.STARTED: _started,
    EventKind.START_FAILED: _start_failed,
    EventKind.TRAFFIC_MOVED: _traffic,
    EventKind.HOOK_AWAITING: _hook_awaiting,
    EventKind.HOOK_RESOLVED: _hook_resolved,
    EventKind.BAKE_STARTED: _bake,
    EventKind.ROLLBACK_STARTED: _rollback,
    EventKind.FINISHED: _finished,
    EventKind.DECISION: _decision,
}


def _reply(view: DeploymentView, line: str, extra: list[str]) -> Message:
    blocks: list[Block] = [section(line)]
    if extra:
        blocks.append(context(*extra))
    return finish(f"{title(view)}: {line}", blocks)


def event_message(
    view: DeploymentView, event: EventView, service: ServiceConfig | None, now: datetime
) -> Message | None:
    """The thread reply narrating `event`, or None when the narrative tells it elsewhere (`telling`).

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
    if renderer is None or telling(event.kind, event.detail) is not Telling.REPLY:
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
        who = rollback_requester(view, event.detail, event.actor)
        line = f"↩️ {user(who)} rolled back *{name}*" if who else f"↩️ *{name}* was rolled back outside DeployBot"
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


def incident_closing(
    view: DeploymentView, event: EventView, service: ServiceConfig | None, permalink: str | None
) -> Message:
    """For a channel where a rollback was asked for or announced: how it ended, and what runs now."""
    line = outcome_line(view, event.detail, event.actor)
    back = short_image(view.image_from) or short_taskdef(view.taskdef_from)
    if view.status is DeploymentStatus.ROLLED_BACK and back:
        line += f" · back on `{escape(back)}`"
    link = f"<{permalink}|Open the deployment thread>" if permalink and _URL.match(permalink) else None
    where = f"#{view.id} · {escape(view.cluster)}/{escape(view.service)}"
    return finish(line, [section(line), context(*(x for x in (link, where) if x))])
