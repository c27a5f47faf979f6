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

from sandbox.ecs.switches import CHOICES

from .helpers import CLUSTER, ROLE, Control, deploy, describe, drive, lambda_arn

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
    assert control.get("state")["switches"] == {name: values[0] for name, values in CHOICES.items()}
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


def _switch(control: Control, name: str, value: str) -> None:
    control.post("switch", {"name": name, "value": value})


CANARY_PAUSE: dict[str, Any] = {
    "strategy": "CANARY",
    "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 1},
    "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["PRE_PRODUCTION_TRAFFIC_SHIFT"]}],
}


@pytest.mark.parametrize(
    ("value", "stage"), [("production", "PRODUCTION_TRAFFIC_SHIFT"), ("previous", "POST_TEST_TRAFFIC_SHIFT")]
)
def test_pre_production_stage(ecs: ECSClient, control: Control, value: str, stage: str) -> None:
    _switch(control, "pre_production_stage", value)
    arn = deploy(ecs, "catalog", **CANARY_PAUSE)
    _, d = drive(ecs, control, arn, until=lambda d: bool(d.get("lifecycleHookDetails")))
    assert d["lifecycleStage"] == stage and d["lifecycleHookDetails"][0]["status"] == "AWAITING_ACTION"


@pytest.mark.parametrize(("value", "stage"), [("production", "PRODUCTION_TRAFFIC_SHIFT"), ("bake_time", "BAKE_TIME")])
def test_step_bake_stage(ecs: ECSClient, control: Control, value: str, stage: str) -> None:
    _switch(control, "step_bake_stage", value)
    arn = deploy(ecs, "catalog", **{**CANARY_PAUSE, "lifecycleHooks": []})
    seen, _ = drive(ecs, control, arn)
    during = {s for _, s, w, _ in seen if w == 10.0}
    assert stage in during and ("BAKE_TIME" in during) is (value == "bake_time")


@pytest.mark.parametrize(("value", "listed"), [("current", 1), ("all", 2)])
def test_hook_details_scope(ecs: ECSClient, control: Control, value: str, listed: int) -> None:
    _switch(control, "hook_details_scope", value)
    lam = {"hookTargetArn": lambda_arn("succeed"), "roleArn": ROLE, "lifecycleStages": ["PRE_SCALE_UP"]}
    pause = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}
    arn = deploy(ecs, "ui", lifecycleHooks=[lam, pause])
    _, d = drive(
        ecs, control, arn, until=lambda d: any(h["targetType"] == "PAUSE" for h in d.get("lifecycleHookDetails", []))
    )
    assert len(d["lifecycleHookDetails"]) == listed


@pytest.mark.parametrize("value", ["names_new", "other", "absent"])
def test_supersede_reason(ecs: ECSClient, control: Control, value: str) -> None:
    _switch(control, "supersede_reason", value)
    first = deploy(ecs, "ui")
    control.advance(30)
    deploy(ecs, "ui", "ui:2")
    reason = describe(ecs, first).get("statusReason")
    assert (reason is None) is (value == "absent") and ("new service deployment" in (reason or "")) is (
        value == "names_new"
    )


@pytest.mark.parametrize("value", ["on_change", "every_describe"])
def test_updated_at(ecs: ECSClient, control: Control, value: str) -> None:
    _switch(control, "updated_at", value)
    arn = deploy(ecs, "ui")
    control.advance(2.5)  # into PRE_SCALE_UP (from 2 s to 4 s)
    before = describe(ecs, arn)["updatedAt"]
    control.advance(0.5)
    assert (describe(ecs, arn)["updatedAt"] > before) is (value == "every_describe")


@pytest.mark.parametrize("value", ["reported", "absent"])
def test_rolling_stages(ecs: ECSClient, control: Control, value: str) -> None:
    _switch(control, "rolling_stages", value)
    seen, _ = drive(ecs, control, deploy(ecs, "orders"))
    assert ({s for _, s, _, _ in seen} == {None}) is (value == "absent")


@pytest.mark.parametrize("value", ["reject", "ignore"])
def test_rolling_shift_hooks(ecs_strict: ECSClient, control: Control, value: str) -> None:
    _switch(control, "rolling_shift_hooks", value)
    hooks = [{"targetType": "PAUSE", "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}]
    if value == "reject":
        with pytest.raises(ClientError):
            deploy(ecs_strict, "orders", lifecycleHooks=hooks)
        return
    seen, final = drive(ecs_strict, control, deploy(ecs_strict, "orders", lifecycleHooks=hooks))
    assert final["status"] == "SUCCESSFUL" and all(h == () for *_, h in seen)  # kept, never run
