"""Every strategy as ECS allows it: rolling pauses, and requests ECS would refuse are refused first (issue 10 item 3)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from bot.domain.enums import DeploymentStatus
from bot.domain.grammar import parser as grammar
from sandbox.ecs import SandboxHandle
from tests.engine.test_engine import CATALOG, approve_until_done, awaiting, deploy
from tests.support import Control, Harness, actor, make_usecases


def test_a_rolling_update_pauses_for_approval_after_scale_up(harness: Harness) -> None:
    dep = deploy(harness, "orders rolling approve=post_scale_up")
    waiting = harness.run_until(dep, awaiting)
    assert waiting.awaiting[0].stage == "POST_SCALE_UP"
    (call,) = harness.control.calls("UpdateService")
    config = call["parameters"]["deploymentConfiguration"]
    assert config["strategy"] == "ROLLING"
    assert [(h["targetType"], h["lifecycleStages"]) for h in config["lifecycleHooks"]] == [("PAUSE", ["POST_SCALE_UP"])]
    assert approve_until_done(harness, dep).status is DeploymentStatus.SUCCEEDED


@pytest.mark.parametrize(
    ("text", "says", "then"),
    [
        # ui's catalog requires approval after test traffic, which a rolling update never has.
        ("ui rolling", "never passes", "`/deploy ui bluegreen`"),
        # orders' load balancer has no alternate target group: only rolling can deploy it.
        ("orders bluegreen", "advancedConfiguration", "`/deploy orders rolling`"),
        ("orders canary 10%", "advancedConfiguration", "`/deploy orders rolling`"),
        # notifications has nothing to shift traffic on.
        (
            "notifications linear 20%",
            "no load balancer, Service Connect or VPC Lattice",
            "`/deploy notifications bluegreen`",
        ),
    ],
)
def test_requests_ecs_would_refuse_are_refused_before_any_call(
    harness: Harness, text: str, says: str, then: str
) -> None:
    answer = harness.usecases.handle(actor(), grammar.parse(text, CATALOG))
    assert not answer.ok and says in answer.text, answer.text
    assert f"Try: {then}" in answer.text
    suggestion = answer.text.split("Try: `/deploy ", 1)[1].rstrip("`")
    assert grammar.format_command(grammar.parse(suggestion, CATALOG)) == suggestion  # it parses as it reads
    assert harness.control.calls("UpdateService") == [] and harness.control.calls("RegisterTaskDefinition") == []


def test_a_lambda_hook_rolling_would_skip_is_refused(sandbox: SandboxHandle, sessions: sessionmaker[Session]) -> None:
    # Without ui's approval, `ui rolling` still keeps its Lambda hook at POST_TEST_TRAFFIC_SHIFT: it would never run.
    ui = replace(CATALOG.services["ui"], approval_stages=())
    catalog = Catalog({**CATALOG.services, "ui": ui}, CATALOG.path)
    control = Control(sandbox.url)
    control.post("reset")
    usecases = make_usecases(sessions, sandbox.url, catalog)
    answer = usecases.handle(actor(), grammar.parse("ui rolling", catalog))
    assert not answer.ok and answer.rule == "hook_never_runs", answer.text
    assert "`succeed`" in answer.text and "POST_TEST_TRAFFIC_SHIFT" in answer.text
    assert "Try: `/deploy ui bluegreen`" in answer.text
    assert control.calls("UpdateService") == []
