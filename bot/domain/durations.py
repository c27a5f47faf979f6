"""Parsing and formatting of human durations like `90s`, `15m`, `2h` (pure)."""

from __future__ import annotations

import re
from datetime import timedelta

MAX_DURATION = timedelta(hours=24)
MAX_PAUSE_MINUTES = 20160  # ECS's limit on a PAUSE hook's timeoutInMinutes (14 days)
_DURATION = re.compile(r"^(\d{1,5})([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


class DurationError(ValueError):
    """A duration that cannot be parsed or is out of range."""


def parse_duration(text: str, *, maximum: timedelta = MAX_DURATION) -> timedelta:
    """Parse `90s`, `15m` or `2h` into a timedelta no longer than `maximum`."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise DurationError(f"`{text}` is not a duration; write it like 90s, 15m or 2h")
    value = timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
    if value > maximum:
        raise DurationError(f"`{text}` is longer than {format_duration(maximum)}")
    return value


def format_duration(value: timedelta) -> str:
    """Format a timedelta the way `parse_duration` reads it, in the largest exact unit."""
    seconds = int(value.total_seconds())
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


def whole_minutes(value: timedelta) -> int:
    """Minutes for ECS fields that take whole minutes, rounding a partial minute up."""
    return -(-int(value.total_seconds()) // 60)


def pause_minutes(timeout: timedelta) -> int:
    """The `timeoutInMinutes` ECS gets for a pause of `timeout`: whole minutes, at least 1, at most 14 days."""
    return min(max(whole_minutes(timeout), 1), MAX_PAUSE_MINUTES)


def humanize(value: timedelta) -> str:
    """Short human form for messages: `1h 5m`, `12m 3s`, `45s`."""
    seconds = max(0, int(value.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    return f"{secs}s"
