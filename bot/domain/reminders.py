"""Which reminders are due for hooks awaiting a person (pure).

Everything here is measured on the bot's clock: `since` is when the bot saw the pause begin and `now` is the bot's
now. ECS's `expiresAt` is on ECS's clock, so the time left is the pause's length (what the bot asked ECS for)
minus how long the bot has watched it wait, never `expiresAt - now` (docs/ARCHITECTURE.md, "Clocks").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain.readmodels import AwaitingHook

WARNING_BEFORE_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Reminder:
    """A reminder to store as a REMINDER event; the key makes sure it is never sent twice."""

    key: str
    detail: dict[str, Any]


def due_reminders(
    hook: AwaitingHook, since: datetime, interval: timedelta, now: datetime, length: timedelta | None
) -> list[Reminder]:
    """The reminder for the current interval and the warning before the timeout, when due.

    `length` is how long the pause lasts before ECS takes its timeout action (None when unknown: no warning).
    """
    waited = now - since
    left = length - waited if length is not None else None
    warning = left is not None and timedelta(0) < left <= WARNING_BEFORE_TIMEOUT
    due: list[Reminder] = []
    base = {
        "hook_id": hook.hook_id,
        "stage": hook.stage,
        "expires_at": hook.expires_at.isoformat() if hook.expires_at else None,
        "timeout_action": hook.timeout_action,
        "waiting_seconds": int(waited.total_seconds()),
    }
    rounds = int(waited / interval) if interval > timedelta(0) else 0
    # Only the latest round: after an outage people get one nudge, not a backlog of them.
    if rounds >= 1 and not warning:
        due.append(Reminder(f"reminder:{hook.hook_id}:{rounds}", {**base, "reminder": "waiting", "round": rounds}))
    if warning and left is not None and length is not None and length > WARNING_BEFORE_TIMEOUT:
        detail = {**base, "reminder": "timeout", "seconds_left": int(left.total_seconds())}
        due.append(Reminder(f"timeout-warning:{hook.hook_id}", detail))
    return due
