"""A Lambda function registered by URL: called over HTTP with the documented payload."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from mypy_boto3_ecs import ECSClient

from .helpers import ROLE, Control, deploy, drive, lambda_arn


class FakeFunction:
    """A tiny HTTP 'Lambda': answers from a script and records each event."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answers: list[bytes] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake.events.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                body = fake.answers.pop(0) if fake.answers else b'{"hookStatus": "SUCCEEDED"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/invoke"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()


@pytest.fixture
def function() -> Iterator[FakeFunction]:
    fake = FakeFunction()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _deploy_with(ecs: ECSClient, control: Control, function: FakeFunction, stage: str) -> str:
    control.post("lambda", {"name": "validate", "url": function.url})
    hook = {
        "hookTargetArn": lambda_arn("validate"),
        "roleArn": ROLE,
        "lifecycleStages": [stage],
        "hookDetails": {"suite": "smoke"},
    }
    return deploy(ecs, "ui", lifecycleHooks=[hook], bakeTimeInMinutes=0)


def test_function_by_url_gets_payload_and_is_reinvoked(
    ecs: ECSClient, control: Control, function: FakeFunction
) -> None:
    function.answers = [b'{"hookStatus": "IN_PROGRESS", "callBackDelay": 3, "hookDetails": {"round": 1}}']
    arn = _deploy_with(ecs, control, function, "TEST_TRAFFIC_SHIFT")

    seen, final = drive(ecs, control, arn, pace=0.005)

    assert final["status"] == "SUCCESSFUL"
    shifting = seen.index(("IN_PROGRESS", "TEST_TRAFFIC_SHIFT", 0.0, ("AWS_LAMBDA:IN_PROGRESS",)))
    assert seen[shifting + 1] == ("IN_PROGRESS", "POST_TEST_TRAFFIC_SHIFT", 0.0, ())
    first, second = function.events
    target, source = final["targetServiceRevision"]["arn"], final["sourceServiceRevisions"][0]["arn"]
    assert first["lifecycleStage"] == "TEST_TRAFFIC_SHIFT" and first["resourceArn"] == arn
    details = first["executionDetails"]
    assert details["serviceArn"] == final["serviceArn"] and details["targetServiceRevisionArn"] == target
    assert details["testTrafficWeights"] == {target: 100.0, source: 0.0}
    assert details["productionTrafficWeights"] == {}
    assert first["hookDetails"] == {"suite": "smoke"}
    assert second["hookDetails"] == {"suite": "smoke", "round": 1}
    assert second["executionId"] == first["executionId"]


@pytest.mark.parametrize("answer", [b'{"hookStatus": "FAILED"}', b"not json", b'{"status": "SUCCEEDED"}'])
def test_function_by_url_failure_rolls_back(
    ecs: ECSClient, control: Control, function: FakeFunction, answer: bytes
) -> None:
    function.answers = [answer]
    arn = _deploy_with(ecs, control, function, "POST_SCALE_UP")

    seen, final = drive(ecs, control, arn, pace=0.005)

    assert final["status"] == "ROLLBACK_SUCCESSFUL"
    assert ("ROLLBACK_IN_PROGRESS", "POST_SCALE_UP", 0.0, ("AWS_LAMBDA:FAILED",)) in seen
    assert final["statusReason"].startswith("deployment failed: hook execution failure(s) detected")
