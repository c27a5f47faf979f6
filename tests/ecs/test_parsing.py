"""ECS's answers parsed once per content: the same result as botocore's own parser, for every answer."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.parsers import JSONParser

from bot.domain.catalog.loader import load_catalog
from bot.domain.catalog.schema import ServiceConfig
from bot.domain.snapshot import snapshot_from_api
from bot.ecs.gateway import EcsGateway
from bot.ecs.parsing import AnswerMemo, ParserFactory, utc_timestamp
from sandbox.ecs import SandboxHandle
from tests.ecs.test_gateway import start_ui
from tests.support import Control

ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:ecs:us-east-1:123456789012:service-deployment/unicorn-watch/ui/"
_OPERATION = botocore.session.get_session().get_service_model("ecs").operation_model("DescribeServiceDeployments")
_SHAPE: Any = _OPERATION.output_shape


def _deployment(name: str, running: int = 1, hook: str = "AWAITING_ACTION") -> dict[str, Any]:
    return {
        "serviceDeploymentArn": ARN + name,
        "createdAt": 1764590400.5,
        "updatedAt": 1764590460.25,
        "status": "IN_PROGRESS",
        "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
        "targetServiceRevision": {
            "arn": "rev/2",
            "runningTaskCount": running,
            "requestedProductionTrafficWeight": 10.0,
        },
        "lifecycleHookDetails": [{"hookId": "ecs-pause-1", "targetType": "PAUSE", "status": hook, "expiresAt": 1.8e9}],
        "deploymentConfiguration": {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10.0}},
    }


def _response(*deployments: dict[str, Any]) -> dict[str, Any]:
    body = {"serviceDeployments": list(deployments), "failures": [{"arn": ARN + "gone", "reason": "MISSING"}]}
    return {"status_code": 200, "headers": {"x-amzn-requestid": "r"}, "body": json.dumps(body).encode()}


def _botocore(response: dict[str, Any]) -> Any:
    return JSONParser().parse(copy.deepcopy(response), _SHAPE)


def test_every_answer_parses_as_botocore_parses_it_whatever_changed_in_between() -> None:
    factory = ParserFactory(AnswerMemo())
    answers = [
        _response(_deployment("a"), _deployment("b")),
        _response(_deployment("a"), _deployment("b")),  # the same again
        _response(_deployment("a", running=2), _deployment("b")),  # a task started
        _response(_deployment("a", running=2), _deployment("b", hook="SUCCEEDED")),  # a pause was continued
        _response(_deployment("b", hook="SUCCEEDED")),
        _response(_deployment("a")),  # as it was first: still parsed from what ECS says now
    ]
    for response in answers:
        ours = factory.create_parser("json").parse(copy.deepcopy(response), _SHAPE)
        assert ours == _botocore(response)
        assert [d["targetServiceRevision"]["runningTaskCount"] for d in ours["serviceDeployments"]] == [
            d["targetServiceRevision"]["runningTaskCount"] for d in json.loads(response["body"])["serviceDeployments"]
        ]


def test_timestamps_are_the_same_instants_in_utc() -> None:
    parsed = ParserFactory(AnswerMemo()).create_parser("json").parse(_response(_deployment("a")), _SHAPE)
    created = parsed["serviceDeployments"][0]["createdAt"]
    assert created == datetime(2025, 12, 1, 12, 0, 0, 500000, tzinfo=UTC) and created.utcoffset() == timedelta(0)
    assert utc_timestamp("2025-12-01T12:00:00Z") == datetime(2025, 12, 1, 12, tzinfo=UTC)


def test_the_memo_keeps_the_most_recently_described() -> None:
    memo = AnswerMemo(size=2)
    for name in ("a", "b", "c"):
        memo.remember(ARN + name, {"n": name}, {"parsed": name})
    assert memo.parsed(ARN + "a", {"n": "a"}) is None  # dropped: the least recently described
    assert memo.parsed(ARN + "c", {"n": "c"}) == {"parsed": "c"}
    assert memo.parsed(ARN + "c", {"n": "changed"}) is None


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
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    ctl = Control(sandbox.url)
    ctl.post("reset")
    ctl.post("speed", {"speed": 0})
    ctl.post("throttling", {"enabled": False})
    return ctl


def test_the_gateway_follows_every_change_ecs_makes(control: Control) -> None:
    cfg: ServiceConfig = load_catalog(ROOT / "services.example.yml").services["ui"]
    gw = EcsGateway(endpoint_url=control.url, max_attempts=2)
    plain = boto3.client(
        "ecs",
        region_name="us-east-1",
        endpoint_url=control.url,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    created_after = control.now() - timedelta(seconds=1)
    _, new = start_ui(gw, cfg)
    arn = gw.find_service_deployment(cfg, new, created_after)
    assert arn is not None
    seen = []
    for _ in range(200):
        ours = gw.describe("us-east-1", None, [arn]).snapshots[0]
        again = gw.describe("us-east-1", None, [arn]).snapshots[0]  # nothing moved in between
        truth = snapshot_from_api(
            plain.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]
        )
        assert ours == truth and again == truth
        assert again is ours  # answered the same: not parsed again
        seen.append((ours.status, ours.lifecycle_stage, ours.target.production_weight if ours.target else None))
        waiting = [h for h in ours.hooks if h.status == "AWAITING_ACTION"]
        if waiting:
            gw.continue_hook("us-east-1", None, arn, waiting[0].hook_id, "CONTINUE")
        elif not control.wake(arn):
            break
    assert seen[-1][0].is_terminal and len(set(seen)) > 3  # it went through its stages to the end
