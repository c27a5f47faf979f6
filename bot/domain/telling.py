"""Which timeline events get a thread reply and which only change the root message: the narrative (pure).

A deployment's thread is read on a phone, so it says what a person acts on or would ask about, once: that it
started, every approval asked and given (with its step), production traffic moving (with its bake), the final bake,
a rollback with who, where from and why, and the outcome. Everything else (stages, test traffic, Lambda hooks that
passed, traffic going back, a step approved and then taken) changes only the root message, whose checklist, bar and
decision lines keep the whole picture; every event stays in the history. The table is docs/ARCHITECTURE.md's
"The thread"; tests/slack/test_narrative.py plays each strategy through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.domain.enums import EventKind, HookTargetType, RollbackCause, Telling

# Kinds whose telling does not depend on the event's detail.
ALWAYS: Mapping[EventKind, Telling] = {
    EventKind.ACCEPTED: Telling.ROOT,  # the root message itself appears
    EventKind.STARTED: Telling.REPLY,
    EventKind.START_FAILED: Telling.REPLY,
    EventKind.STAGE_ENTERED: Telling.ROOT,  # the checklist's ▶
    EventKind.STAGE_PASSED: Telling.ROOT,  # the checklist's ✓, however many ran between two checks
    EventKind.HOOK_AWAITING: Telling.REPLY,  # a person has to act: it mentions who may approve
    EventKind.DECISION: Telling.REPLY,  # one line: who approved which step, or who rolled back from where and why
    EventKind.FINISHED: Telling.REPLY,
    EventKind.REMINDER: Telling.REPLY,
    EventKind.REFUSED: Telling.AUDIT,  # only the person refused is told (ephemerally)
    EventKind.LOCKED: Telling.AUDIT,  # the lock answer is posted in the channel; no deployment thread
    EventKind.UNLOCKED: Telling.AUDIT,
}


def telling(kind: EventKind, detail: Mapping[str, Any]) -> Telling:
    """Where the event is told: a thread reply, only the root message, or only the history."""
    if kind in ALWAYS:
        return ALWAYS[kind]
    if kind is EventKind.TRAFFIC_MOVED:
        return _traffic(detail)
    if kind is EventKind.BAKE_STARTED:
        # A step bake is told with the traffic move it follows; the final bake has a line of its own.
        return Telling.REPLY if detail.get("kind") == "final" else Telling.ROOT
    if kind is EventKind.HOOK_RESOLVED:
        return _hook_resolved(detail)
    if kind is EventKind.ROLLBACK_STARTED:
        return _rollback(detail)
    return Telling.REPLY  # a kind added later is told until someone decides otherwise


def _traffic(detail: Mapping[str, Any]) -> Telling:
    if detail.get("direction") == "rb" or "step" not in detail:
        return Telling.ROOT  # going back: the rollback line said so; test traffic: the bar shows it
    # A step a person approved was announced by their approval line.
    return Telling.ROOT if detail.get("approved_by") else Telling.REPLY


def _hook_resolved(detail: Mapping[str, Any]) -> Telling:
    if detail.get("decision") or detail.get("resolved_by"):
        return Telling.ROOT  # our own approve or rollback: the DECISION line said it
    if detail.get("target_type") not in (None, HookTargetType.PAUSE):
        return Telling.ROOT  # a Lambda hook: a failure is told by the rollback it causes
    if detail.get("outcome") == "failed":
        return Telling.ROOT  # a pause rolled back outside DeployBot: the rollback line tells it
    return Telling.REPLY  # timed out, or released outside DeployBot: nobody here decided it


def _rollback(detail: Mapping[str, Any]) -> Telling:
    cause = RollbackCause.of(detail.get("cause"))
    if cause is RollbackCause.USER:
        return Telling.ROOT  # the DECISION line said who, from where and why
    if cause is RollbackCause.TIMEOUT and detail.get("hook_id"):
        return Telling.ROOT  # the timed-out pause's line said it
    return Telling.REPLY  # alarm, circuit breaker, hook failure, ECS: why it turns back


CONVERSATION = re.compile(r"^[CG][A-Z0-9]{2,}$")  # a channel or private channel id; DMs (D…) are not closed


def closing_channels(
    home: str,
    rollback_channels: Iterable[str | None],
    rollback_causes: Iterable[object],
    incident_channel: str | None,
) -> tuple[str, ...]:
    """The channels, besides the deployment's own, that hear how a rollback ended: where a person asked for it
    (`rollback_channels`, the channels of the rollback decisions) and the incident channel an automatic rollback
    was announced in (`rollback_causes`, the causes of the ROLLBACK_STARTED events). In order, each once."""
    found = [c for c in rollback_channels if c]
    announced = any((cause := RollbackCause.of(c)) is not None and cause.is_automatic for c in rollback_causes)
    if announced and incident_channel:
        found.append(incident_channel)
    return tuple(dict.fromkeys(c for c in found if c != home and CONVERSATION.match(c)))
