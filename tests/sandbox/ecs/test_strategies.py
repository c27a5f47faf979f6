"""Observed (status, lifecycleStage, production weight, hooks) sequences for each strategy."""

from __future__ import annotations

from mypy_boto3_ecs import ECSClient
from mypy_boto3_ecs.type_defs import ServiceDeploymentTypeDef

from .helpers import CLUSTER, Control, continue_pauses, deploy, describe, drive

PAUSE = {"targetType": "PAUSE"}
START = [
    ("PENDING", None, 0.0, ()),
    ("IN_PROGRESS", "PRE_SCALE_UP", 0.0, ()),
    ("IN_PROGRESS", "SCALE_UP", 0.0, ()),
    ("IN_PROGRESS", "POST_SCALE_UP", 0.0, ()),
    ("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", 0.0, ()),
]
END = [
    ("IN_PROGRESS", "POST_PRODUCTION_TRAFFIC_SHIFT", 100.0, ()),
    ("IN_PROGRESS", "BAKE_TIME", 100.0, ()),
    ("IN_PROGRESS", "CLEAN_UP", 100.0, ()),
    ("SUCCESSFUL", "CLEAN_UP", 100.0, ()),
]


def test_blue_green_pause_after_test_traffic_continued(ecs: ECSClient, control: Control) -> None:
    service = ecs.describe_services(cluster=CLUSTER, services=["ui"])["services"][0]
    seeded_hooks = service["deploymentConfiguration"]["lifecycleHooks"]
    arn = deploy(ecs, "ui", lifecycleHooks=[*seeded_hooks, {**PAUSE, "lifecycleStages": ["POST_TEST_TRAFFIC_SHIFT"]}])

    seen, final = drive(ecs, control, arn, act=continue_pauses(ecs))

    assert seen == [
        *START,
        ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0, ("AWS_LAMBDA:IN_PROGRESS", "PAUSE:AWAITING_ACTION")),
        ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0, ("AWS_LAMBDA:IN_PROGRESS", "PAUSE:SUCCEEDED")),
        ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0, ("AWS_LAMBDA:SUCCEEDED", "PAUSE:SUCCEEDED")),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 0.0, ()),
        *END,
    ]
    target, [source] = final["targetServiceRevision"], final["sourceServiceRevisions"]
    assert (target["requestedTestTrafficWeight"], source["requestedProductionTrafficWeight"]) == (100.0, 0.0)
    assert (target["runningTaskCount"], source["runningTaskCount"]) == (3, 0)
    assert "rollback" not in final
    assert final["finishedAt"] > final["startedAt"] >= final["createdAt"]
    # Bake time of 5 minutes really elapsed between production shift and the end.
    assert (final["finishedAt"] - final["startedAt"]).total_seconds() >= 300
    now = ecs.describe_services(cluster=CLUSTER, services=["ui"])["services"][0]
    assert now["taskDefinition"].endswith("task-definition/ui:1")


def test_canary_pause_before_each_production_step(ecs: ECSClient, control: Control) -> None:
    hook_ids: list[str] = []
    arn = deploy(ecs, "catalog", lifecycleHooks=[{**PAUSE, "lifecycleStages": ["PRE_PRODUCTION_TRAFFIC_SHIFT"]}])

    seen, final = drive(ecs, control, arn, act=continue_pauses(ecs, hook_ids=hook_ids))

    assert seen == [
        *START,
        ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0, ()),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 0.0, ("PAUSE:AWAITING_ACTION",)),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 0.0, ("PAUSE:SUCCEEDED",)),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 10.0, ("PAUSE:SUCCEEDED",)),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 10.0, ("PAUSE:AWAITING_ACTION",)),
        ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 10.0, ("PAUSE:SUCCEEDED",)),
        *END,
    ]
    assert len(hook_ids) == 2 and hook_ids[0] != hook_ids[1]
    assert all(h.startswith("ecs-pause-") for h in hook_ids)
    assert final["alarms"]["status"] == "MONITORING_COMPLETE"


def test_linear_eleven_percent_steps(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs,
        "catalog",
        strategy="LINEAR",
        lifecycleHooks=[],
        linearConfiguration={"stepPercent": 11.0, "stepBakeTimeInMinutes": 1},
    )

    seen, _ = drive(ecs, control, arn)

    weights = [w for status, stage, w, _ in seen if stage == "PRODUCTION_TRAFFIC_SHIFT"]
    assert weights == [0.0, 11.0, 22.0, 33.0, 44.0, 55.0, 66.0, 77.0, 88.0, 99.0]
    assert seen[-4:] == END


def _awaiting(d: ServiceDeploymentTypeDef) -> bool:
    return any(h["status"] == "AWAITING_ACTION" for h in d.get("lifecycleHookDetails", []))


def test_canary_weights_and_pause_fields(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs,
        "catalog",
        lifecycleHooks=[
            {
                **PAUSE,
                "lifecycleStages": ["POST_PRODUCTION_TRAFFIC_SHIFT"],
                "timeoutConfiguration": {"timeoutInMinutes": 30, "action": "CONTINUE"},
            }
        ],
        canaryConfiguration={"canaryPercent": 12.5, "canaryBakeTimeInMinutes": 0},
    )

    seen, d = drive(ecs, control, arn, until=_awaiting)

    assert [w for _, stage, w, _ in seen if stage == "PRODUCTION_TRAFFIC_SHIFT"] == [0.0, 12.5]
    [hook] = d["lifecycleHookDetails"]
    assert (hook["targetType"], hook["timeoutAction"]) == ("PAUSE", "CONTINUE")
    assert (hook["expiresAt"] - d["updatedAt"]).total_seconds() == 1800
    assert d["sourceServiceRevisions"][0]["requestedProductionTrafficWeight"] == 0.0
    assert d["targetServiceRevision"]["requestedProductionTrafficWeight"] == 100.0


def test_rolling_passes_the_scale_up_stages_and_has_no_weights(ecs: ECSClient, control: Control) -> None:
    arn = deploy(ecs, "orders")

    seen, _ = drive(ecs, control, arn)

    assert [(status, stage) for status, stage, _, _ in seen] == [
        ("PENDING", None),
        ("IN_PROGRESS", "PRE_SCALE_UP"),
        ("IN_PROGRESS", "SCALE_UP"),
        ("IN_PROGRESS", "POST_SCALE_UP"),
        ("IN_PROGRESS", "CLEAN_UP"),
        ("SUCCESSFUL", "CLEAN_UP"),
    ]
    assert {w for *_, w, _ in seen} == {None}  # no traffic weights on a rolling update


def test_rolling_runs_pause_and_lambda_hooks(ecs: ECSClient, control: Control) -> None:
    lam = {
        "targetType": "AWS_LAMBDA",
        "hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:succeed",
        "roleArn": "arn:aws:iam::123456789012:role/hook",
        "lifecycleStages": ["PRE_SCALE_UP"],
    }
    arn = deploy(ecs, "orders", lifecycleHooks=[lam, {**PAUSE, "lifecycleStages": ["POST_SCALE_UP"]}])

    seen, final = drive(ecs, control, arn, act=continue_pauses(ecs))

    assert ("IN_PROGRESS", "PRE_SCALE_UP", None, ("AWS_LAMBDA:IN_PROGRESS",)) in seen
    assert ("IN_PROGRESS", "POST_SCALE_UP", None, ("PAUSE:AWAITING_ACTION",)) in seen
    assert final["status"] == "SUCCESSFUL"


def test_rolling_pause_rolled_back(ecs: ECSClient, control: Control) -> None:
    arn = deploy(ecs, "orders", lifecycleHooks=[{**PAUSE, "lifecycleStages": ["PRE_SCALE_UP"]}])

    _, final = drive(ecs, control, arn, act=continue_pauses(ecs, "ROLLBACK"))

    assert final["status"] == "ROLLBACK_SUCCESSFUL"


def test_headless_blue_green_keeps_weights_at_zero(ecs: ECSClient, control: Control) -> None:
    arn = deploy(
        ecs,
        "notifications",
        lifecycleHooks=[
            {
                "targetType": "AWS_LAMBDA",
                "hookTargetArn": "arn:aws:lambda:us-east-1:123456789012:function:slow",
                "roleArn": "arn:aws:iam::123456789012:role/hook",
                "lifecycleStages": ["PRODUCTION_TRAFFIC_SHIFT"],
            }
        ],
    )

    seen, final = drive(ecs, control, arn)

    assert ("IN_PROGRESS", "PRODUCTION_TRAFFIC_SHIFT", 0.0, ("AWS_LAMBDA:IN_PROGRESS",)) in seen
    assert {w for *_, w, _ in seen} == {0.0}
    assert final["status"] == "SUCCESSFUL"


def test_new_update_stops_deployment_in_progress(ecs: ECSClient, control: Control) -> None:
    first = deploy(ecs, "ui")
    control.advance(30)

    second = deploy(ecs, "ui", "ui:2")

    assert second != first
    assert describe(ecs, first)["status"] == "STOP_REQUESTED"
    seen, final = drive(ecs, control, second)
    assert describe(ecs, first)["status"] == "STOPPED"
    assert seen[1][1] == "RECONCILE_SERVICE"  # two revisions were active when it started
    assert final["status"] == "SUCCESSFUL" and len(final["sourceServiceRevisions"]) == 2
