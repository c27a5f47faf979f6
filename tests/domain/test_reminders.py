"""When reminders and timeout warnings are due (pure); all on the bot's clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.readmodels import AwaitingHook
from bot.domain.reminders import due_reminders

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
HOOK = AwaitingHook("ecs-pause-1", "PRE_PRODUCTION_TRAFFIC_SHIFT", T0 + HOUR, "ROLLBACK")


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
    due = due_reminders(HOOK, T0, timedelta(minutes=15), T0 + timedelta(minutes=minutes), HOUR)
    assert [r.key for r in due] == keys


@pytest.mark.parametrize("ecs_ahead", [timedelta(0), timedelta(hours=3), -timedelta(minutes=40)])
def test_the_warning_ignores_where_ecs_clock_stands(ecs_ahead: timedelta) -> None:
    # expiresAt is on ECS's clock; the warning is measured from when the bot saw the pause, on the bot's clock.
    hook = AwaitingHook("h", None, T0 + HOUR + ecs_ahead, "ROLLBACK")
    (warning,) = due_reminders(hook, T0, timedelta(hours=2), T0 + timedelta(minutes=50), HOUR)
    assert (warning.key, warning.detail["seconds_left"]) == ("timeout-warning:h", 600)


def test_no_warning_when_the_whole_timeout_is_shorter_than_the_warning() -> None:
    short = AwaitingHook("h", None, T0 + timedelta(minutes=10), "CONTINUE")
    assert due_reminders(short, T0, timedelta(minutes=30), T0 + timedelta(minutes=2), timedelta(minutes=10)) == []


def test_no_warning_when_the_length_is_unknown() -> None:
    assert due_reminders(HOOK, T0, timedelta(hours=2), T0 + timedelta(minutes=50), None) == []


def test_warning_says_how_long_is_left_and_what_happens() -> None:
    (warning,) = due_reminders(HOOK, T0, timedelta(hours=2), T0 + timedelta(minutes=50), HOUR)
    assert warning.detail["seconds_left"] == 600
    assert warning.detail["timeout_action"] == "ROLLBACK"
    assert warning.detail["reminder"] == "timeout"
