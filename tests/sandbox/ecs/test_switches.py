"""Named switches for behaviour AWS leaves undocumented, and the shape of what ECS generates for pauses."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.error
from typing import Any

import pytest
from botocore.exceptions import ClientError
from mypy_boto3_ecs import ECSClient

from .helpers import CLUSTER, Control, deploy, describe, drive

PAUSE = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"], "hookDetails": {"deploybot": "approval"}}


def _pauses(ecs: ECSClient, service: str) -> list[dict[str, Any]]:
    config = ecs.describe_services(cluster=CLUSTER, services=[service])["services"][0]["deploymentConfiguration"]
    return [dict(h) for h in config.get("lifecycleHooks", []) if h.get("targetType") == "PAUSE"]


@pytest.mark.parametrize(("mode", "kept"), [("drop", None), ("echo", {"deploybot": "approval"})])
def test_hook_details_on_a_pause_are_dropped_or_echoed(
    ecs_strict: ECSClient, control: Control, mode: str, kept: dict[str, str] | None
) -> None:
    control.post("switch", {"name": "pause_hook_details", "value": mode})
    deploy(ecs_strict, "ui", lifecycleHooks=[PAUSE])
    assert [p.get("hookDetails") for p in _pauses(ecs_strict, "ui")] == [kept]


def test_hook_details_on_a_pause_are_rejected_like_ecs_rejects_a_parameter(
    ecs_strict: ECSClient, control: Control
) -> None:
    control.post("switch", {"name": "pause_hook_details", "value": "reject"})
    with pytest.raises(ClientError) as caught:
        deploy(ecs_strict, "ui", lifecycleHooks=[PAUSE])
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterException" and "lifecycleHooks[0].hookDetails" in error["Message"]
    assert _pauses(ecs_strict, "ui") == []  # nothing changed
    without = {k: v for k, v in PAUSE.items() if k != "hookDetails"}
    deploy(ecs_strict, "ui", lifecycleHooks=[without])  # the same pause without hookDetails is fine


def test_the_default_is_drop_and_reset_restores_it(control: Control) -> None:
    assert control.get("state")["switches"]["pause_hook_details"] == "drop"
    control.post("switch", {"name": "pause_hook_details", "value": "reject"})
    assert control.get("state")["switches"]["pause_hook_details"] == "reject"
    control.post("reset")
    assert control.get("state")["switches"]["pause_hook_details"] == "drop"


@pytest.mark.parametrize("body", [{"name": "nope", "value": "drop"}, {"name": "pause_hook_details", "value": "keep"}])
def test_unknown_switches_and_values_are_refused(control: Control, body: dict[str, str]) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        control.post("switch", body)
    assert caught.value.code == 400


def test_a_pause_hook_id_looks_like_ecs_s(ecs_strict: ECSClient, control: Control) -> None:
    arn = deploy(ecs_strict, "ui", lifecycleHooks=[{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}])
    _, paused = drive(ecs_strict, control, arn, until=lambda d: bool(d.get("lifecycleHookDetails")))
    hook_id = paused["lifecycleHookDetails"][0]["hookId"]
    # The pause-hook guide's example: ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw
    assert re.fullmatch(r"ecs-pause-[A-Za-z0-9_-]{43}", hook_id), hook_id
    assert describe(ecs_strict, arn)["lifecycleHookDetails"][0]["hookId"] == hook_id


def test_the_cli_refuses_an_unknown_switch() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "sandbox", "ecs", "--port", "0", "--switch", "pause_hook_details=keep"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and "pause_hook_details takes one of drop, echo, reject" in result.stderr


def test_the_cli_starts_the_sandbox_with_the_switches_given() -> None:
    command = [sys.executable, "-m", "bot.cli", "sandbox", "ecs", "--port", "0", "--switch", "pause_hook_details=echo"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[3]
        assert "pause_hook_details=echo" in process.stdout.readline().split()
        assert Control(url).get("state")["switches"]["pause_hook_details"] == "echo"
    finally:
        process.terminate()
        process.wait(timeout=5)
