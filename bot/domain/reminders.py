"""Which reminders are due for hooks awaiting a person (pure)."""

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


def due_reminders(hook: AwaitingHook, since: datetime, interval: timedelta, now: datetime) -> list[Reminder]:
    """The reminder for the current interval and the warning before the timeout, when due."""
    due: list[Reminder] = []
    base = {
        "hook_id": hook.hook_id,
        "stage": hook.stage,
        "expires_at": hook.expires_at.isoformat() if hook.expires_at else None,
        "timeout_action": hook.timeout_action,
        "waiting_seconds": int((now - since).total_seconds()),
    }
    rounds = int((now - since) / interval) if interval > timedelta(0) else 0
    # Only the latest round: after an outage people get one nudge, not a backlog of them.
    if rounds >= 1 and not _in_warning_window(hook, now):
        due.append(Reminder(f"reminder:{hook.hook_id}:{rounds}", {**base, "reminder": "waiting", "round": rounds}))
    if (
        hook.expires_at is not None
        and _in_warning_window(hook, now)
        and hook.expires_at - since > WARNING_BEFORE_TIMEOUT
    ):
        left = int((hook.expires_at - now).total_seconds())
        due.append(Reminder(f"timeout-warning:{hook.hook_id}", {**base, "reminder": "timeout", "seconds_left": left}))
    return due


def _in_warning_window(hook: AwaitingHook, now: datetime) -> bool:
    return hook.expires_at is not None and timedelta(0) < hook.expires_at - now <= WARNING_BEFORE_TIMEOUT
