"""A deployment ECS no longer finds ends LOST only after a few passes in a row (bot/domain/machine/lost.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.domain.enums import DeploymentStatus, EventKind, LifecycleStage, Strategy
from bot.domain.machine.lost import LOST_AFTER, missing_pass
from bot.domain.machine.state import Tracked

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RUNNING = replace(Tracked.start(Strategy.CANARY, 10.0), lifecycle_stage=LifecycleStage.SCALE_UP)


@pytest.mark.parametrize(("passes", "lost"), [(1, False), (LOST_AFTER - 1, False), (LOST_AFTER, True), (9, True)])
def test_lost_only_after_enough_passes(passes: int, lost: bool) -> None:
    state, events = missing_pass(RUNNING, passes, NOW)
    assert (state.status is DeploymentStatus.LOST) is lost
    assert [e.kind for e in events] == ([EventKind.FINISHED] if lost else [])


def test_lost_event_says_what_is_known_and_no_duration() -> None:
    state, (event,) = missing_pass(RUNNING, LOST_AFTER, NOW)
    assert event.key == "finished" and event.key in state.emitted and event.stage == "SCALE_UP"
    assert event.detail["outcome"] == "LOST" and event.detail["missing_passes"] == LOST_AFTER
    assert "duration_seconds" not in event.detail and "finished_at" not in event.detail


def test_a_deployment_that_already_finished_is_not_lost_again() -> None:
    done = replace(RUNNING, status=DeploymentStatus.SUCCEEDED, emitted=("finished",))
    assert missing_pass(done, LOST_AFTER, NOW) == (done, [])
