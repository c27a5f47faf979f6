"""Which stage a pause waits at: ECS's hook details carry no stage, so it comes from lifecycleStage + configuration."""

from __future__ import annotations

import pytest

from bot.domain.enums import LifecycleStage as L
from bot.domain.machine.rules import hook_stage

POST_TEST, PRE_PROD, POST_SCALE = "POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT", "POST_SCALE_UP"


@pytest.mark.parametrize(
    ("target", "reported", "configured", "used", "stage"),
    [
        ("PAUSE", L.POST_TEST_TRAFFIC_SHIFT, (POST_TEST,), (), POST_TEST),
        ("PAUSE", L.PRODUCTION_TRAFFIC_SHIFT, (PRE_PROD,), (), PRE_PROD),  # PRE_PRODUCTION is never reported
        ("PAUSE", L.PRODUCTION_TRAFFIC_SHIFT, (), (), PRE_PROD),  # configuration unknown: the reported stage
        ("PAUSE", None, (POST_SCALE,), (), POST_SCALE),  # no lifecycleStage: the only configured pause
        ("PAUSE", None, (POST_SCALE, POST_TEST), (), None),  # two candidates: say less
        ("PAUSE", None, (), (), None),
        # lifecycleStage still reads the previous stage while PRE_PRODUCTION_TRAFFIC_SHIFT hooks run
        ("PAUSE", L.POST_TEST_TRAFFIC_SHIFT, (PRE_PROD,), (), PRE_PROD),
        ("PAUSE", L.POST_TEST_TRAFFIC_SHIFT, (POST_TEST, PRE_PROD), (POST_TEST,), PRE_PROD),  # POST_TEST runs once
        ("PAUSE", L.PRODUCTION_TRAFFIC_SHIFT, (POST_TEST, PRE_PROD), (POST_TEST, PRE_PROD), PRE_PROD),  # repeats
        ("PAUSE", L.SCALE_UP, (POST_SCALE, POST_TEST), (), None),
        ("AWS_LAMBDA", L.PRODUCTION_TRAFFIC_SHIFT, (PRE_PROD,), (), "PRODUCTION_TRAFFIC_SHIFT"),
    ],
)
def test_the_stage_of_a_hook(
    target: str, reported: L | None, configured: tuple[str, ...], used: tuple[str, ...], stage: str | None
) -> None:
    assert hook_stage(target, reported, configured, used) == stage
