"""The ECS gateway: pure parsing and request building, then real HTTP against the ECS sandbox with boto3."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dateutil.tz import tzlocal, tzutc

from bot.domain.catalog.loader import load_catalog
from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import (
    DecisionKind,
    DeploymentStatus,
    EcsStatus,
    EventKind,
    HookStage,
    LifecycleStage,
    Strategy,
    TimeoutAction,
)
from bot.domain.machine.advance import Event, Tracked, advance
from bot.domain.snapshot import Credentials, HookDetail, ServiceInfo
from bot.ecs.gateway import EcsError, EcsGateway, EcsUnavailable, StartSpec, snapshot_from_api
from bot.ecs.requests import deployment_configuration, hook_findings, image_repository, register_params, replace_image
from sandbox.ecs import SandboxHandle
from tests.support import Control

ROOT = Path(__file__).resolve().parents[2]
RETAIL = "public.ecr.aws/aws-containers/retail-store-sample-"
SUCCEED = "arn:aws:lambda:us-east-1:123456789012:function:succeed"
ROLE = "arn:aws:iam::123456789012:role/deploybot"
DEP = "arn:aws:ecs:us-east-1:123456789012:service-deployment/unicorn-watch/ui/"


# --- pure: snapshot_from_api ------------------------------------------------------------------------------------

API_FULL: dict[str, Any] = {  # shaped like boto3's output: datetimes carry a zone
    "serviceDeploymentArn": DEP + "abc",
    "serviceArn": "arn:aws:ecs:us-east-1:123456789012:service/unicorn-watch/ui",
    "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/unicorn-watch",
    "createdAt": datetime(2025, 6, 1, 12, 0, tzinfo=tzutc()),
    "startedAt": datetime(2025, 6, 1, 12, 0, 2, tzinfo=tzutc()),
    "updatedAt": datetime(2025, 6, 1, 12, 5, tzinfo=tzutc()),
    "sourceServiceRevisions": [
        {
            "arn": "rev/1",
            "requestedTaskCount": 3,
            "runningTaskCount": 3,
            "pendingTaskCount": 0,
            "requestedTestTrafficWeight": 0.0,
            "requestedProductionTrafficWeight": 90.0,
        }
    ],
    "targetServiceRevision": {
        "arn": "rev/2",
        "requestedTaskCount": 3,
        "runningTaskCount": 2,
        "pendingTaskCount": 1,
        "requestedTestTrafficWeight": 100.0,
        "requestedProductionTrafficWeight": 10.0,
    },
    "status": "IN_PROGRESS",
    "statusReason": "deployment in progress",
    "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
    "lifecycleHookDetails": [
        {
            "hookId": "ecs-pause-abc",
            "targetType": "PAUSE",
            "status": "AWAITING_ACTION",
            "expiresAt": datetime(2025, 6, 1, 13, 0, tzinfo=tzutc()),
            "timeoutAction": "ROLLBACK",
        }
    ],
    "deploymentConfiguration": {
        "strategy": "CANARY",
        "bakeTimeInMinutes": 5,
        "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 3},
    },
    "rollback": {
        "reason": "alarm",
        "startedAt": datetime(2025, 6, 1, 12, 6, tzinfo=tzutc()),
        "serviceRevisionArn": "rev/1",
    },
    "deploymentCircuitBreaker": {"status": "MONITORING", "failureCount": 0, "threshold": 3},
    "alarms": {"status": "TRIGGERED", "alarmNames": ["catalog-5xx", "p99"], "triggeredAlarmNames": ["catalog-5xx"]},
}


def test_snapshot_from_api_full() -> None:
    s = snapshot_from_api(API_FULL)
    assert s.arn == DEP + "abc"
    assert s.status is EcsStatus.IN_PROGRESS
    assert s.lifecycle_stage is LifecycleStage.PRODUCTION_TRAFFIC_SHIFT
    assert s.strategy is Strategy.CANARY
    assert (s.canary_percent, s.canary_bake_minutes, s.bake_minutes) == (10.0, 3, 5)
    assert (s.linear_step_percent, s.step_bake_minutes) == (None, None)
    assert s.target is not None and (s.target.test_weight, s.target.production_weight) == (100.0, 10.0)
    assert (s.target.requested_tasks, s.target.running_tasks, s.target.pending_tasks) == (3, 2, 1)
    assert s.sources[0].production_weight == 90.0
    assert s.hooks == (
        HookDetail(
            "ecs-pause-abc", "PAUSE", None, "AWAITING_ACTION", datetime(2025, 6, 1, 13, 0, tzinfo=UTC), "ROLLBACK"
        ),
    )
    assert s.rollback is not None and s.rollback.service_revision_arn == "rev/1"
    assert s.alarms is not None and s.alarms.triggered_alarm_names == ("catalog-5xx",)
    assert s.circuit_breaker is not None and s.circuit_breaker.threshold == 3
    assert s.created_at == datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    assert s.finished_at is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2025, 6, 1, 12, 0, tzinfo=tzutc()), datetime(2025, 6, 1, 12, 0, tzinfo=UTC)),
        (datetime(2025, 6, 1, 12, 0), datetime(2025, 6, 1, 12, 0, tzinfo=UTC)),  # naive → UTC
        (1748779200.0, datetime(2025, 6, 1, 12, 0, tzinfo=UTC)),
        ("2025-06-01T12:00:00Z", datetime(2025, 6, 1, 12, 0, tzinfo=UTC)),
    ],
)
def test_snapshot_timestamps_are_aware_utc(value: Any, expected: datetime) -> None:
    s = snapshot_from_api({"serviceDeploymentArn": "a", "status": "PENDING", "createdAt": value})
    assert s.created_at == expected
    assert s.created_at is not None and s.created_at.tzinfo is not None


def test_snapshot_local_zone_is_converted() -> None:
    local = datetime(2025, 6, 1, 12, 0, tzinfo=tzlocal())
    s = snapshot_from_api({"serviceDeploymentArn": "a", "status": "PENDING", "createdAt": local})
    assert s.created_at == local and s.created_at is not None and s.created_at.utcoffset() == timedelta(0)


def test_snapshot_minimal_rolling() -> None:
    s = snapshot_from_api(
        {
            "serviceDeploymentArn": "a",
            "status": "SUCCESSFUL",
            "targetServiceRevision": {"arn": "rev/2", "requestedTaskCount": 3},
            "deploymentConfiguration": {"strategy": "ROLLING"},
        }
    )
    assert (s.lifecycle_stage, s.rollback, s.alarms, s.circuit_breaker, s.hooks) == (None, None, None, None, ())
    assert s.target is not None and s.target.production_weight is None
    assert s.strategy is Strategy.ROLLING


def test_snapshot_unknown_stage_is_tolerated() -> None:
    s = snapshot_from_api({"serviceDeploymentArn": "a", "status": "IN_PROGRESS", "lifecycleStage": "NEW_STAGE_2030"})
    assert s.lifecycle_stage is None


# --- pure: request building -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "new", "expected"),
    [
        (RETAIL + "ui:1.2.1", ":1.3.0", RETAIL + "ui:1.3.0"),
        ("registry.local:5000/team/ui:1.2", ":1.3", "registry.local:5000/team/ui:1.3"),
        ("registry.local:5000/team/ui", ":1.3", "registry.local:5000/team/ui:1.3"),
        ("ui@sha256:" + "a" * 64, ":1.3", "ui:1.3"),
        ("ui:1", "@sha256:" + "b" * 64, "ui@sha256:" + "b" * 64),
        (RETAIL + "ui:1.2.1", "ghcr.io/x/ui:9", "ghcr.io/x/ui:9"),
    ],
)
def test_replace_image(current: str, new: str, expected: str) -> None:
    assert replace_image(current, new) == expected


def test_image_repository_keeps_registry_port() -> None:
    assert image_repository("host:5000/ui") == "host:5000/ui"


def test_register_params_keep_only_accepted_fields() -> None:
    described: dict[str, Any] = {
        "taskDefinitionArn": "arn:…:task-definition/ui:2",
        "revision": 2,
        "status": "ACTIVE",
        "registeredAt": datetime.now(UTC),
        "requiresAttributes": [],
        "compatibilities": ["FARGATE"],
        "family": "ui",
        "cpu": "256",
        "containerDefinitions": [{"name": "ui", "image": "ui:1"}, {"name": "envoy", "image": "envoy:1"}],
    }
    params = register_params(described, [{"key": "team", "value": "web"}], "ui", ":2")
    assert params == {
        "family": "ui",
        "cpu": "256",
        "tags": [{"key": "team", "value": "web"}],
        "containerDefinitions": [{"name": "ui", "image": "ui:2"}, {"name": "envoy", "image": "envoy:1"}],
    }
    assert described["containerDefinitions"][0]["image"] == "ui:1"  # the input is not modified


def spec(strategy: Strategy = Strategy.BLUE_GREEN, **kw: Any) -> StartSpec:
    return StartSpec(strategy=strategy, task_definition="ui:3", **kw)


LAMBDA_HOOK = {
    "targetType": "AWS_LAMBDA",
    "hookTargetArn": SUCCEED,
    "roleArn": ROLE,
    "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"],
}
EXISTING = {
    "strategy": "CANARY",
    "maximumPercent": 200,
    "bakeTimeInMinutes": 5,
    "lifecycleHooks": [LAMBDA_HOOK],
    "canaryConfiguration": {"canaryPercent": 10.0, "canaryBakeTimeInMinutes": 5},
    "alarms": {"alarmNames": ["catalog-5xx"], "enable": True, "rollback": True},
}


def test_configuration_keeps_settings_and_hooks_and_adds_our_pause() -> None:
    config = deployment_configuration(
        EXISTING,
        spec(
            approval_stages=(HookStage.POST_TEST_TRAFFIC_SHIFT, HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT),
            approval_timeout=timedelta(minutes=90, seconds=1),
            timeout_action=TimeoutAction.CONTINUE,
            bake=timedelta(seconds=150),
        ),
    )
    assert config["strategy"] == "BLUE_GREEN"
    assert config["bakeTimeInMinutes"] == 3  # whole minutes, rounded up
    assert "canaryConfiguration" not in config  # valid only with CANARY
    assert config["alarms"] == EXISTING["alarms"] and config["maximumPercent"] == 200
    assert config["lifecycleHooks"] == [
        LAMBDA_HOOK,
        {
            "targetType": "PAUSE",
            "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT", "PRE_PRODUCTION_TRAFFIC_SHIFT"],
            "timeoutConfiguration": {"timeoutInMinutes": 91, "action": "CONTINUE"},
        },
    ]
    assert EXISTING["strategy"] == "CANARY"  # the service's own dict is not modified


PAUSE_WITH_MARKER = {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"], "hookDetails": {"deploybot": "x"}}
SOMEONE_ELSES_PAUSE = {"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]}
LAMBDA_WITHOUT_TYPE = {"hookTargetArn": SUCCEED, "roleArn": ROLE, "lifecycleStages": ["PRE_SCALE_UP"]}


@pytest.mark.parametrize(
    ("existing", "stages", "pauses"),
    [
        ([], (HookStage.PRE_SCALE_UP,), [["PRE_SCALE_UP"]]),
        ([PAUSE_WITH_MARKER], (HookStage.PRE_SCALE_UP,), [["PRE_SCALE_UP"]]),  # an old DeployBot marker
        ([SOMEONE_ELSES_PAUSE], (HookStage.POST_SCALE_UP,), [["POST_SCALE_UP"]]),  # DeployBot owns every pause
        ([SOMEONE_ELSES_PAUSE, PAUSE_WITH_MARKER], (), []),  # nothing needs approval: no pause at all
        ([PAUSE_WITH_MARKER] * 10, (HookStage.POST_SCALE_UP,), [["POST_SCALE_UP"]]),  # never accumulates
    ],
)
def test_configuration_writes_exactly_our_pauses_and_keeps_every_lambda_hook(
    existing: list[dict[str, Any]], stages: tuple[HookStage, ...], pauses: list[list[str]]
) -> None:
    before = {"lifecycleHooks": [LAMBDA_HOOK, *existing, LAMBDA_WITHOUT_TYPE]}
    config = deployment_configuration(before, spec(approval_stages=stages))
    written = [h for h in config["lifecycleHooks"] if h.get("targetType") == "PAUSE"]
    assert [h["lifecycleStages"] for h in written] == pauses
    assert all("hookDetails" not in h for h in written)
    assert [h for h in config["lifecycleHooks"] if h.get("targetType") != "PAUSE"] == [LAMBDA_HOOK, LAMBDA_WITHOUT_TYPE]
    again = deployment_configuration(config, spec(approval_stages=stages))
    assert again["lifecycleHooks"] == config["lifecycleHooks"]  # deploying again changes nothing


@pytest.mark.parametrize(
    ("hooks", "stages", "note", "problem"),
    [
        ([LAMBDA_HOOK], (HookStage.POST_SCALE_UP,), None, None),
        (
            [LAMBDA_HOOK, {"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}],
            (HookStage.POST_SCALE_UP,),
            None,
            None,
        ),
        (
            [SOMEONE_ELSES_PAUSE],
            (HookStage.POST_SCALE_UP,),
            "pauses the catalog does not declare (PAUSE at PRE_SCALE_UP): these will be replaced by a pause at "
            "POST_SCALE_UP",
            None,
        ),
        ([SOMEONE_ELSES_PAUSE], (), "replaced by none (the catalog asks for no approval)", None),
        ([LAMBDA_HOOK] * 11, (), None, "11 Lambda hooks in its ECS configuration; ECS allows at most 10"),
        ([SOMEONE_ELSES_PAUSE] * 11, (), "PAUSE at PRE_SCALE_UP; PAUSE at PRE_SCALE_UP", "11 PAUSE hooks"),
    ],
)
def test_check_findings_on_a_services_hooks(
    hooks: list[dict[str, Any]], stages: tuple[HookStage, ...], note: str | None, problem: str | None
) -> None:
    notes, problems = hook_findings({"lifecycleHooks": hooks}, spec(approval_stages=stages))
    assert (note is None) == (not notes) and all(note in n for n in notes if note)
    assert (problem is None) == (not problems) and all(problem in p for p in problems if problem)


@pytest.mark.parametrize(
    ("strategy", "present", "absent"),
    [
        (
            Strategy.CANARY,
            {"canaryConfiguration": {"canaryPercent": 2.5, "canaryBakeTimeInMinutes": 1}},
            "linearConfiguration",
        ),
        (
            Strategy.LINEAR,
            {"linearConfiguration": {"stepPercent": 11.0, "stepBakeTimeInMinutes": 7}},
            "canaryConfiguration",
        ),
    ],
)
def test_configuration_per_strategy(strategy: Strategy, present: dict[str, Any], absent: str) -> None:
    existing = {**EXISTING, "linearConfiguration": {"stepPercent": 10.0, "stepBakeTimeInMinutes": 6}}
    config = deployment_configuration(
        existing,
        spec(
            strategy,
            canary_percent=2.5,
            canary_bake=timedelta(seconds=1),
            linear_step_percent=11.0,
            step_bake=timedelta(minutes=7),
        ),
    )
    assert {k: config[k] for k in present} == present
    assert absent not in config
    assert config["bakeTimeInMinutes"] == 10


def test_rolling_gets_its_pause_in_place_of_ours() -> None:
    ours = deployment_configuration({}, spec(approval_stages=(HookStage.POST_SCALE_UP,)))
    config = deployment_configuration(ours, spec(Strategy.ROLLING, approval_stages=(HookStage.PRE_SCALE_UP,)))
    assert config["strategy"] == "ROLLING"
    assert [(h["targetType"], h["lifecycleStages"]) for h in config["lifecycleHooks"]] == [("PAUSE", ["PRE_SCALE_UP"])]


# --- against the sandbox ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    from sandbox.ecs.server import start

    with start(port=0) as handle:
        yield handle


@pytest.fixture
def control(sandbox: SandboxHandle, monkeypatch: pytest.MonkeyPatch) -> Control:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    ctl = Control(sandbox.url)
    ctl.post("reset")
    ctl.post("speed", {"speed": 0})  # only /_sandbox/advance moves time: deterministic sequences
    ctl.post("throttling", {"enabled": False})
    return ctl


@pytest.fixture
def gw(control: Control) -> EcsGateway:
    return EcsGateway(endpoint_url=control.url, max_attempts=2)


@pytest.fixture(scope="module")
def catalog() -> dict[str, ServiceConfig]:
    return dict(load_catalog(ROOT / "services.example.yml").services)


def test_read_service_blue_green_with_lambda_hook(gw: EcsGateway, catalog: dict[str, ServiceConfig]) -> None:
    info = gw.read_service(catalog["ui"])
    assert info.service_arn == "arn:aws:ecs:us-east-1:123456789012:service/unicorn-watch/ui"
    assert info.task_definition == "ui:2"
    assert info.image == RETAIL + "ui:1.2.1"
    assert info.strategy is Strategy.BLUE_GREEN and info.desired_count == 3
    assert [h.get("hookTargetArn") for h in info.hooks] == [SUCCEED]
    assert (info.has_load_balancers, info.has_service_connect, info.headless) == (True, False, False)


@pytest.mark.parametrize(("key", "lbs", "connect"), [("catalog", True, True), ("notifications", False, False)])
def test_read_service_traffic_setup(
    gw: EcsGateway, catalog: dict[str, ServiceConfig], key: str, lbs: bool, connect: bool
) -> None:
    info = gw.read_service(catalog[key])
    assert (info.has_load_balancers, info.has_service_connect) == (lbs, connect)
    assert info.headless is (not lbs and not connect)


def test_read_service_errors(gw: EcsGateway, catalog: dict[str, ServiceConfig]) -> None:
    with pytest.raises(EcsError) as missing:
        gw.read_service(replace(catalog["ui"], service="nope"))
    assert missing.value.code == "ServiceNotFoundException"
    with pytest.raises(EcsError) as container:
        gw.read_service(replace(catalog["ui"], container="sidecar"))
    assert container.value.code == "ContainerNotFound" and "sidecar" in container.value.message
    with pytest.raises(EcsError) as cluster:
        gw.read_service(replace(catalog["ui"], cluster="nope"))
    assert cluster.value.code == "ClusterNotFoundException"
    assert not isinstance(cluster.value, EcsUnavailable)


@pytest.mark.parametrize(
    ("image", "expected"), [(":1.3.0", RETAIL + "ui:1.3.0"), ("ghcr.io/acme/ui:7", "ghcr.io/acme/ui:7")]
)
def test_register_image(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig], image: str, expected: str
) -> None:
    cfg = catalog["ui"]
    arn = gw.register_image(cfg, gw.read_service(cfg).task_definition_arn, image)
    assert arn.endswith("task-definition/ui:3")
    described = gw.client("us-east-1").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert described["containerDefinitions"][0]["image"] == expected
    assert (described["cpu"], described["memory"], described["networkMode"]) == ("256", "512", "awsvpc")
    sent = control.calls("RegisterTaskDefinition")[-1]["parameters"]
    assert "revision" not in sent and "taskDefinitionArn" not in sent and "status" not in sent


def start_ui(gw: EcsGateway, cfg: ServiceConfig, **kw: Any) -> tuple[ServiceInfo, str]:
    info = gw.read_service(cfg)
    new = gw.register_image(cfg, info.task_definition_arn, ":1.3.0")
    stages = kw.pop("approval_stages", cfg.approval_stages)
    gw.start_deployment(
        cfg,
        StartSpec(
            Strategy.BLUE_GREEN,
            new,
            bake=cfg.bake,
            approval_stages=stages,
            approval_timeout=cfg.approval_timeout,
            timeout_action=cfg.timeout_action,
            **kw,
        ),
        info,
    )
    return info, new


def test_start_deployment_keeps_lambda_hook_and_adds_pause(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    cfg = catalog["ui"]
    start_ui(gw, cfg)
    start_ui(gw, cfg)  # a second deployment replaces our pause instead of adding another
    hooks = gw.read_service(cfg).hooks
    assert [h["targetType"] for h in hooks] == ["AWS_LAMBDA", "PAUSE"]
    assert hooks[0]["hookTargetArn"] == SUCCEED
    assert hooks[1]["lifecycleStages"] == ["POST_TEST_TRAFFIC_SHIFT"]
    assert hooks[1]["timeoutConfiguration"] == {"timeoutInMinutes": 60, "action": "ROLLBACK"}
    sent = control.calls("UpdateService")[-1]["parameters"]
    assert sent["deploymentConfiguration"]["bakeTimeInMinutes"] == 5
    assert sent["deploymentConfiguration"]["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert "forceNewDeployment" not in sent


def test_redeploying_the_same_task_definition_forces(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    cfg = catalog["orders"]
    info = gw.read_service(cfg)
    created_after = control.now() - timedelta(seconds=1)
    gw.start_deployment(cfg, StartSpec(Strategy.ROLLING, info.task_definition_arn))
    assert control.calls("UpdateService")[-1]["parameters"]["forceNewDeployment"] is True
    assert gw.find_service_deployment(cfg, info.task_definition_arn, created_after) is not None


def test_find_service_deployment(gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]) -> None:
    cfg = catalog["ui"]
    created_after = control.now() - timedelta(seconds=1)
    _, new = start_ui(gw, cfg)
    arn = gw.find_service_deployment(cfg, new, created_after)
    assert arn is not None and arn.startswith(DEP)
    assert gw.find_service_deployment(cfg, "ui:1", created_after) is None
    assert gw.find_service_deployment(cfg, new, control.now() + timedelta(minutes=1)) is None
    snap = gw.describe("us-east-1", None, [arn]).snapshots[0]
    assert snap.strategy is Strategy.BLUE_GREEN and snap.status in (EcsStatus.PENDING, EcsStatus.IN_PROGRESS)
    assert len(control.calls("DescribeServiceRevisions")) >= 1


def test_describe_batches_by_twenty(gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]) -> None:
    created_after = control.now() - timedelta(seconds=1)
    _, new = start_ui(gw, catalog["ui"])
    real = gw.find_service_deployment(catalog["ui"], new, created_after)
    assert real is not None
    ghosts = [f"{DEP}ghost{i:02d}" for i in range(24)]
    result = gw.describe("us-east-1", None, [*ghosts[:10], real, *ghosts[10:]])
    assert [s.arn for s in result.snapshots] == [real]
    assert set(result.missing_arns) == set(ghosts)
    sizes = [len(c["parameters"]["serviceDeploymentArns"]) for c in control.calls("DescribeServiceDeployments")]
    assert sizes == [20, 5]


def drive_to_hook(gw: EcsGateway, control: Control, arn: str) -> HookDetail:
    for _ in range(200):
        snap = gw.describe("us-east-1", None, [arn]).snapshots[0]
        waiting = [h for h in snap.hooks if h.status == "AWAITING_ACTION"]
        if waiting:
            return waiting[0]
        assert control.wake(arn), f"no pause reached: {snap.status} {snap.lifecycle_stage}"
    raise AssertionError("no pause reached")


def test_continue_and_stop(gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]) -> None:
    cfg = catalog["ui"]
    created_after = control.now() - timedelta(seconds=1)
    _, new = start_ui(gw, cfg)
    arn = gw.find_service_deployment(cfg, new, created_after)
    assert arn is not None
    hook = drive_to_hook(gw, control, arn)
    assert hook.is_pause and hook.timeout_action == "ROLLBACK" and hook.expires_at is not None
    gw.continue_hook("us-east-1", None, arn, hook.hook_id, "CONTINUE")
    with pytest.raises(EcsError) as twice:
        gw.continue_hook("us-east-1", None, arn, hook.hook_id, "CONTINUE")
    assert twice.value.code == "InvalidParameterException"
    gw.stop("us-east-1", None, arn)
    snap = gw.describe("us-east-1", None, [arn]).snapshots[0]
    assert snap.status in (EcsStatus.ROLLBACK_REQUESTED, EcsStatus.ROLLBACK_IN_PROGRESS)
    while control.wake(arn):
        pass
    assert gw.describe("us-east-1", None, [arn]).snapshots[0].status is EcsStatus.ROLLBACK_SUCCESSFUL
    with pytest.raises(EcsError) as conflict:
        gw.stop("us-east-1", None, arn)
    assert conflict.value.code == "ConflictException"
    with pytest.raises(EcsError) as unknown:
        gw.continue_hook("us-east-1", None, DEP + "nope", "ecs-pause-x", "ROLLBACK")
    assert unknown.value.code == "ServiceDeploymentNotFoundException"


@pytest.mark.parametrize("code", ["ThrottlingException", "ServerException"])
def test_throttling_and_server_errors_are_unavailable(gw: EcsGateway, control: Control, code: str) -> None:
    control.post("fault", {"operation": "DescribeServiceDeployments", "code": code, "rate": 1.0})
    with pytest.raises(EcsUnavailable) as caught:
        gw.describe("us-east-1", None, [DEP + "x"])
    assert caught.value.code == code and caught.value.operation == "DescribeServiceDeployments"
    assert len(control.calls("DescribeServiceDeployments")) == 2  # botocore's standard retries: max_attempts


def test_connection_refused_is_unavailable(control: Control) -> None:
    gateway = EcsGateway(endpoint_url="http://127.0.0.1:9", max_attempts=1, connect_timeout=1)
    with pytest.raises(EcsUnavailable) as caught:
        gateway.stop("us-east-1", None, DEP + "x")
    assert caught.value.code == "ConnectionError"


def test_endpoint_from_standard_env_var(
    control: Control, monkeypatch: pytest.MonkeyPatch, catalog: dict[str, ServiceConfig]
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", control.url)
    assert EcsGateway(max_attempts=1).read_service(catalog["orders"]).task_definition == "orders:2"


class FakeSts:
    """Stands in for STS AssumeRole; records calls; hands out credentials expiring after `lifetime`."""

    def __init__(self, lifetime: timedelta) -> None:
        self.lifetime = lifetime
        self.calls: list[tuple[str, str]] = []

    def __call__(self, role_arn: str, session_name: str) -> Credentials:
        self.calls.append((role_arn, session_name))
        return Credentials(f"ASIAFAKE{len(self.calls)}", "secret", "token", datetime.now(UTC) + self.lifetime)


def signed_key_ids(gw: EcsGateway, role: str) -> list[str]:
    seen: list[str] = []

    def capture(request: Any, **_: Any) -> None:
        seen.append(request.headers["Authorization"].decode().split("Credential=")[1].split("/")[0])

    gw.client("us-east-1", role).meta.events.register("before-send", capture)
    return seen


def test_assume_role_when_catalog_names_a_role(control: Control, catalog: dict[str, ServiceConfig]) -> None:
    sts = FakeSts(timedelta(hours=1))
    gw = EcsGateway(endpoint_url=control.url, assume_role=sts, max_attempts=1)
    cfg = replace(catalog["ui"], role_arn=ROLE)
    keys = signed_key_ids(gw, ROLE)
    gw.read_service(cfg)
    gw.read_service(cfg)
    assert sts.calls == [(ROLE, "deploybot")]
    assert set(keys) == {"ASIAFAKE1"}
    gw.read_service(catalog["ui"])  # no role: the environment's credentials, a different client
    assert sts.calls == [(ROLE, "deploybot")]


def test_assumed_credentials_are_refreshed_before_expiry(control: Control, catalog: dict[str, ServiceConfig]) -> None:
    sts = FakeSts(timedelta(minutes=5))  # inside botocore's mandatory refresh window
    gw = EcsGateway(endpoint_url=control.url, assume_role=sts, max_attempts=1)
    cfg = replace(catalog["ui"], role_arn=ROLE)
    keys = signed_key_ids(gw, ROLE)
    gw.read_service(cfg)
    gw.read_service(cfg)
    assert len(sts.calls) >= 2
    assert keys[-1] == f"ASIAFAKE{len(sts.calls)}"


def test_clients_are_cached_per_region_and_role(control: Control) -> None:
    gw = EcsGateway(endpoint_url=control.url, assume_role=FakeSts(timedelta(hours=1)))
    found: list[Any] = []
    threads = [threading.Thread(target=lambda: found.append(gw.client("us-east-1", ROLE))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(c) for c in found}) == 1
    assert gw.client("us-east-1") is gw.client("us-east-1")
    assert gw.client("us-east-1") is not gw.client("eu-west-1")
    assert gw.client("us-east-1") is not found[0]


def follow(
    gw: EcsGateway, control: Control, cfg: ServiceConfig, spec: StartSpec, alarm: str | None = None
) -> tuple[Tracked, list[Event]]:
    """Start a deployment, then poll it with the machine, approving every pause (and firing `alarm` once live)."""
    created_after = control.now() - timedelta(seconds=1)
    gw.start_deployment(cfg, spec)
    arn = gw.find_service_deployment(cfg, spec.task_definition, created_after)
    assert arn is not None
    tracked, events = Tracked.start(spec.strategy, spec.canary_percent), []
    decisions: dict[str, tuple[DecisionKind, str]] = {}
    for _ in range(300):
        snap = gw.describe(cfg.region, None, [arn]).snapshots[0]
        tracked, new = advance(tracked, snap, control.now(), decisions)
        events += new
        waiting = [h for h in snap.hooks if h.status == "AWAITING_ACTION"]
        if snap.status.is_terminal:
            break
        if alarm and tracked.production_weight:
            control.post("alarm", {"name": alarm, "state": "ALARM"})
            alarm = None
        elif waiting:
            decisions[waiting[0].hook_id] = (DecisionKind.APPROVE, "U0BOB")
            gw.continue_hook(cfg.region, None, arn, waiting[0].hook_id, "CONTINUE")
        else:
            assert control.wake(arn)
    return tracked, events


def test_machine_follows_a_sandbox_blue_green_deployment(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    cfg = catalog["ui"]
    new = gw.register_image(cfg, gw.read_service(cfg).task_definition_arn, ":1.3.0")
    tracked, events = follow(
        gw, control, cfg, StartSpec(Strategy.BLUE_GREEN, new, bake=cfg.bake, approval_stages=cfg.approval_stages)
    )
    keys = [e.key for e in events]
    assert tracked.status is DeploymentStatus.SUCCEEDED, keys
    assert "traffic:fwd:100.0:0.0" in keys and "traffic:fwd:100.0:100.0" in keys
    assert "bake:BAKE_TIME" in keys and keys[-1] == "finished"
    stages = [k.split(":")[1] for k in keys if k.startswith(("stage:", "stage-passed:"))]
    assert stages == [s.value for s in LifecycleStage if s is not LifecycleStage.RECONCILE_SERVICE]
    resolved = [e for e in events if e.kind is EventKind.HOOK_RESOLVED]
    assert {e.detail["target_type"] for e in resolved} == {"AWS_LAMBDA", "PAUSE"}
    assert [e.actor for e in resolved if e.detail["target_type"] == "PAUSE"] == ["U0BOB"]
    assert len(keys) == len(set(keys))


def test_machine_follows_a_sandbox_canary_asking_twice(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    cfg = catalog["catalog"]
    new = gw.register_image(cfg, gw.read_service(cfg).task_definition_arn, ":1.3.0")
    spec = StartSpec(Strategy.CANARY, new, canary_percent=10.0, approval_stages=cfg.approval_stages)
    tracked, events = follow(gw, control, cfg, spec)
    assert tracked.status is DeploymentStatus.SUCCEEDED
    asks = [e for e in events if e.kind is EventKind.HOOK_AWAITING]
    assert [(e.stage, e.detail["next_step"]["percent"]) for e in asks] == [
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 10.0),
        ("PRE_PRODUCTION_TRAFFIC_SHIFT", 100.0),
    ]
    steps = [
        (e.detail["step"], e.detail["steps"]) for e in events if "step" in e.detail and e.key.startswith("traffic")
    ]
    assert steps == [(1, 2), (2, 2)]


def test_machine_follows_a_sandbox_linear_and_an_alarm(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    cfg = catalog["catalog"]
    new = gw.register_image(cfg, gw.read_service(cfg).task_definition_arn, ":1.3.0")
    tracked, events = follow(gw, control, cfg, StartSpec(Strategy.LINEAR, new, linear_step_percent=20.0))
    assert tracked.status is DeploymentStatus.SUCCEEDED
    assert [e.detail["step"] for e in events if e.key.startswith("traffic") and "step" in e.detail] == [1, 2, 3, 4, 5]
    for path, body in (("reset", {}), ("speed", {"speed": 0}), ("throttling", {"enabled": False})):
        control.post(path, body)
    new = gw.register_image(cfg, gw.read_service(cfg).task_definition_arn, ":1.3.1")
    tracked, events = follow(gw, control, cfg, StartSpec(Strategy.CANARY, new), alarm="catalog-5xx")
    rollback = next(e for e in events if e.kind is EventKind.ROLLBACK_STARTED)
    assert (rollback.detail["cause"], rollback.detail["alarm_name"]) == ("alarm", "catalog-5xx")
    assert tracked.status is DeploymentStatus.ROLLED_BACK


def test_deploybot_check_reports_undeclared_pauses_and_hook_limits(
    control: Control, gw: EcsGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.connectivity import _check_ecs
    from bot.domain.catalog.loader import load_catalog as load

    client = gw.client("us-east-1")
    config = client.describe_services(cluster="unicorn-watch", services=["ui"])["services"][0][
        "deploymentConfiguration"
    ]
    theirs = {"targetType": "PAUSE", "lifecycleStages": ["PRE_SCALE_UP"]}
    config["lifecycleHooks"] = [*config.get("lifecycleHooks", []), theirs]  # type: ignore[list-item]
    client.update_service(cluster="unicorn-watch", service="ui", deploymentConfiguration=config)
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECS", control.url)
    problems: list[Any] = []
    notes: list[str] = []
    _check_ecs(load(ROOT / "services.example.yml"), problems, notes)
    assert problems == []
    assert (
        "ECS: ui: its ECS configuration has pauses the catalog does not declare (PAUSE at PRE_SCALE_UP): these will "
        "be replaced by a pause at POST_TEST_TRAFFIC_SHIFT on its next deployment through DeployBot"
    ) in notes
    assert not [n for n in notes if n.startswith("ECS: catalog:")]  # no pause there yet: nothing to replace


@pytest.mark.parametrize(("current", "named"), [("new", True), ("absent", False), ("previous", False)])
def test_start_deployment_reads_the_deployment_from_update_service(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig], current: str, named: bool
) -> None:
    control.post("switch", {"name": "update_service_current_deployment", "value": current})
    cfg = catalog["orders"]
    info = gw.read_service(cfg)
    created_after = control.now() - timedelta(seconds=1)
    arn = gw.start_deployment(cfg, StartSpec(Strategy.ROLLING, info.task_definition_arn), info)
    listed = gw.find_service_deployment(cfg, info.task_definition_arn, created_after)
    assert listed is not None and listed != info.current_deployment_arn
    assert arn == (listed if named else None)  # never the deployment that was current before


def test_find_service_deployment_finds_one_that_already_ended(
    gw: EcsGateway, control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    cfg = catalog["orders"]
    info = gw.read_service(cfg)
    created_after = control.now() - timedelta(seconds=1)
    started = gw.start_deployment(cfg, StartSpec(Strategy.ROLLING, info.task_definition_arn), info)
    assert started is not None
    while control.wake(started):
        pass
    assert gw.describe("us-east-1", None, [started]).snapshots[0].status is EcsStatus.SUCCESSFUL
    assert gw.find_service_deployment(cfg, info.task_definition_arn, created_after) == started


# --- the gateway's own retries (botocore makes one attempt: its quota drains under sustained 5xx) ---------------


@pytest.mark.parametrize(
    ("operation", "code", "retried"),
    [
        ("DescribeServices", "ThrottlingException", True),
        ("DescribeServices", "ServerException", True),  # a read: sending it again changes nothing
        ("UpdateService", "ThrottlingException", True),  # refused before ECS did anything
        ("UpdateService", "ServerException", False),  # may have landed: the caller asks ECS first
        ("ContinueServiceDeployment", "ServerException", False),
        ("StopServiceDeployment", "ThrottlingException", True),
    ],
)
def test_may_retry_reads_always_changes_only_after_a_throttle(operation: str, code: str, retried: bool) -> None:
    from bot.ecs.gateway import may_retry

    assert may_retry(operation, EcsUnavailable(code, "", operation)) is retried


@pytest.mark.parametrize(
    ("attempt", "code", "most"),
    [(1, "ServerException", 0.1), (2, "ServerException", 0.2), (1, "ThrottlingException", 0.5), (9, "Throttling", 4.0)],
)
def test_backoff_is_capped_exponential_with_full_jitter(attempt: int, code: str, most: float) -> None:
    from bot.ecs.gateway import backoff

    error = EcsUnavailable(code, "", "DescribeServices")
    assert backoff(attempt, error, rand=lambda: 1.0) == pytest.approx(most)
    assert backoff(attempt, error, rand=lambda: 0.0) == 0.0


def test_a_change_is_sent_once_after_a_5xx_and_again_after_a_throttle(
    control: Control, catalog: dict[str, ServiceConfig]
) -> None:
    waits: list[float] = []
    gateway = EcsGateway(endpoint_url=control.url, max_attempts=3, sleep=waits.append)
    service = catalog["orders"]
    info = gateway.read_service(service)
    control.post("fault", {"operation": "UpdateService", "code": "ServerException", "rate": 1})
    with pytest.raises(EcsUnavailable):
        gateway.start_deployment(
            service, replace(spec(Strategy.ROLLING), task_definition=info.task_definition_arn), info
        )
    assert len(control.calls("UpdateService")) == 1 and waits == []
    control.post("fault", {"operation": "UpdateService", "code": "ThrottlingException", "rate": 1})
    with pytest.raises(EcsUnavailable):
        gateway.start_deployment(
            service, replace(spec(Strategy.ROLLING), task_definition=info.task_definition_arn), info
        )
    assert len(control.calls("UpdateService")) == 1 + 3 and len(waits) == 2
    assert len(control.calls("DescribeServices")) == 1  # botocore itself never retried anything
