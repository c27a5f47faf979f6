"""When reminders and timeout warnings are due (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.readmodels import AwaitingHook
from bot.domain.reminders import due_reminders

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOOK = AwaitingHook("ecs-pause-1", "PRE_PRODUCTION_TRAFFIC_SHIFT", T0 + timedelta(hours=1), "ROLLBACK")


@pytest.mark.parametrize(
    ("minutes", "keys"),
    [
        (5, []),
        (15, ["reminder:ecs-pause-1:1"]),
        (29, ["reminder:ecs-pause-1:1"]),
        (31, ["reminder:ecs-pause-1:2"]),
        (45, ["timeout-warning:ecs-pause-1"]),
        (50, ["timeout-warning:ecs-pause-1"]),
        (61, ["reminder:ecs-pause-1:4"]),
    ],
)
def test_due_reminders(minutes: int, keys: list[str]) -> None:
    due = due_reminders(HOOK, T0, timedelta(minutes=15), T0 + timedelta(minutes=minutes))
    assert [r.key for r in due] == keys


def test_no_warning_when_the_whole_timeout_is_shorter_than_the_warning() -> None:
    short = AwaitingHook("h", None, T0 + timedelta(minutes=10), "CONTINUE")
    assert due_reminders(short, T0, timedelta(minutes=30), T0 + timedelta(minutes=2)) == []


def test_warning_says_how_long_is_left_and_what_happens() -> None:
    (warning,) = due_reminders(HOOK, T0, timedelta(hours=2), T0 + timedelta(minutes=50))
    assert warning.detail["seconds_left"] == 600
    assert warning.detail["timeout_action"] == "ROLLBACK"
    assert warning.detail["reminder"] == "timeout"
