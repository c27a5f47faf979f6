"""What an on-call engineer sees of a full run over real loopback HTTP: the JSON log lines (with what each is about,
never a secret or a raw request) and /metrics, scraped while deployments run. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.errors import SlackApiError

from bot.domain.enums import LogFormat
from bot.logs import MASK, configure_logging
from bot.slack.blocks import APPROVE_ACTION
from bot.slack.clients import web_client
from sandbox.slack.delivery import sign
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET
from tests.e2e_support import World, awaiting, http_json
from tests.test_deploy_files import granted

SECRETS = (DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET)
# Fragments of the stand-in's raw request bodies (form-encoded commands, interactivity payloads).
RAW_BODIES = ("command=%2Fdeploy", "payload=%7B", "response_url=http", '"trigger_id"', "token=")


@pytest.fixture
def logs(restore_logging: None) -> io.StringIO:
    """Everything logged during the test, configured as `deploybot run` does it (JSON), at DEBUG.

    Tests ask for it before `world`, so the bot's start is in it too.
    """
    out = io.StringIO()
    configure_logging("DEBUG", LogFormat.JSON, stream=out, secrets=SECRETS)
    return out


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    """Every line must be one JSON object with when, how bad, where from and what."""
    parsed = []
    for raw in out.getvalue().splitlines():
        line = json.loads(raw)
        assert isinstance(line, dict), raw
        assert {"timestamp", "level", "logger", "message"} <= set(line), raw
        assert line["level"] in {"debug", "info", "warning", "error", "critical"}, raw
        parsed.append(line)
    return parsed


def approve_until_done(w: World, dep: int) -> None:
    """Bob approves each pause until the deployment ends."""
    seen: set[str] = set()
    while True:
        view = w.run_until(dep, lambda v: not v.is_active or (awaiting(v) and v.awaiting[0].hook_id not in seen))
        if not view.is_active:
            return
        seen.add(view.awaiting[0].hook_id)
        w.click("U0BOB", w.root(dep)["ts"], APPROVE_ACTION)
        w.told("U0BOB", "Approval sent", len(seen))


def test_a_deployment_logs_json_with_its_context_and_no_secrets(logs: io.StringIO, world: World) -> None:
    w = world
    w.command("U0ALICE", "catalog canary 10%")
    dep = w.started()
    approve_until_done(w, dep)
    w.drain()
    view = w.view(dep)
    assert view.status.value == "SUCCEEDED" and view.ecs_deployment_arn

    text = logs.getvalue()
    for secret in SECRETS:
        assert secret not in text
    assert MASK not in text, "something tried to log a secret (the redactor caught it)"
    for fragment in RAW_BODIES:
        assert fragment not in text, fragment

    about = [line for line in lines(logs) if line.get("deployment_id") == dep]
    messages = {line["message"] for line in about}
    assert {"deployment requested", "deployment started on ECS", "deployment event", "decision sent to ECS"} <= messages
    assert "outbox row sent" in messages
    for line in about:
        assert line.get("service") == "catalog" or line["logger"] == "bot.slack.sender", line
    requested = next(line for line in about if line["message"] == "deployment requested")
    assert (requested["user"], requested["channel"], requested["request_kind"]) == ("U0ALICE", "C0DEPLOYS", "command")
    assert len(requested["request_id"]) == 8
    decided = [line for line in about if line["message"] == "decision sent to ECS"]
    assert decided and all(line["user"] == "U0BOB" and line["request_kind"] == "block_actions" for line in decided)
    assert all(line["ecs_arn"] == view.ecs_deployment_arn for line in decided)
    events = [line for line in about if line["message"] == "deployment event"]
    assert all(line["ecs_arn"] == view.ecs_deployment_arn for line in events)
    assert {"FINISHED", "HOOK_AWAITING"} <= {line["event_kind"] for line in events}
    sent = [line for line in about if line["message"] == "outbox row sent"]
    assert all(line["channel"] == "C0DEPLOYS" and line["outbox_key"] for line in sent)


def test_a_failing_listener_logs_the_reference_the_person_is_given(
    logs: io.StringIO, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world

    def broken(*_: object) -> None:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(w.ctx.usecases, "handle", broken)
    w.command("U0ALICE", "status")
    told = w.ephemeral_with("U0ALICE", "something went wrong on my side")
    ref = told["text"].split("ref `")[1].split("`")[0]

    failed = [line for line in lines(logs) if line["level"] == "error"]
    assert [line["request_id"] for line in failed] == [ref]
    assert "RuntimeError: the database fell over" in failed[0]["exception"]
    assert (failed[0]["user"], failed[0]["channel"]) == ("U0ALICE", "C0DEPLOYS")
    same_request = [line for line in lines(logs) if line.get("request_id") == ref]
    assert {line["message"] for line in same_request} >= {"slack request"}


# /metrics ------------------------------------------------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(w: World) -> Samples:
    status, text = http_json(f"{w.bot.url}/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def test_metrics_follow_a_deployment_from_request_to_outcome(world: World) -> None:
    w = world
    before = scrape(w)
    assert value(before, "deploybot_metrics_database_up") == 1
    assert value(before, "deploybot_deployments_active", status="IN_PROGRESS", strategy="CANARY") == 0

    w.command("U0ALICE", "catalog canary 10%")
    dep = w.started()
    queued = scrape(w)  # the root message is queued, not sent yet
    assert value(queued, "deploybot_deployments_active", status="IN_PROGRESS", strategy="CANARY") == 1
    assert value(queued, "deploybot_outbox_depth", state="pending") >= 1
    assert value(queued, "deploybot_outbox_oldest_unsent_age_seconds") >= 0

    w.run_until(dep, awaiting)
    paused = scrape(w)
    assert value(paused, "deploybot_deployments_active", status="AWAITING_APPROVAL", strategy="CANARY") == 1
    assert value(paused, "deploybot_approvals_waiting") == 1
    assert value(paused, "deploybot_approval_oldest_wait_seconds") >= 0
    assert value(paused, "deploybot_outbox_depth", state="pending") == 0

    approve_until_done(w, dep)
    w.drain()
    forged = {"Content-Type": "application/x-www-form-urlencoded", **sign("not-the-secret", b"command=%2Fdeploy")}
    status, _ = http_json(f"{w.bot.url}/slack/events", raw=b"command=%2Fdeploy", headers=forged)
    assert status == 401
    after = scrape(w)

    assert grew(before, after, "deploybot_deployment_outcomes_total", outcome="SUCCEEDED", strategy="CANARY") == 1
    assert value(after, "deploybot_approvals_waiting") == 0
    assert sum(v for (name, _), v in after.items() if name == "deploybot_deployments_active") == 0
    assert value(after, "deploybot_outbox_depth", state="pending") == 0
    assert value(after, "deploybot_outbox_oldest_unsent_age_seconds") == 0
    for operation in ("DescribeServices", "UpdateService", "DescribeServiceDeployments"):
        assert grew(before, after, "deploybot_ecs_calls_total", operation=operation) >= 1, operation
    assert grew(before, after, "deploybot_ecs_calls_total", operation="ContinueServiceDeployment") == len(
        w.ecs.calls("ContinueServiceDeployment")
    )
    for method in ("chat.postMessage", "chat.update", "usergroups.users.list"):
        assert grew(before, after, "deploybot_slack_api_calls_total", method=method) >= 1, method
    assert grew(before, after, "deploybot_slack_ack_seconds_count", kind="command") == 1
    assert grew(before, after, "deploybot_slack_ack_seconds_count", kind="block_actions") >= 2
    assert grew(before, after, "deploybot_slack_ack_seconds_count", kind="unverified") == 1
    assert grew(before, after, "deploybot_reconcile_pass_seconds_count") >= 1
    assert grew(before, after, "deploybot_reconcile_pass_deployments_sum") >= 1

    # ECS's signature, not only our own: every operation the sandbox saw is one the IAM policy grants.
    seen = {f"ecs:{c['operation']}" for c in w.ecs.get("calls")["calls"]}
    assert seen <= granted()


def test_slack_429s_are_counted_by_method(world: World) -> None:
    w = world
    w.control("settings", {"rate_limit": True, "rate_interval": 60})
    client = web_client(DEFAULT_BOT_TOKEN, w.slack.api_url)
    before = scrape(w)
    client.chat_postMessage(channel="C0DEPLOYS", text="first")
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0DEPLOYS", text="second, too soon")
    w.control("settings", {"rate_limit": False})
    after = scrape(w)
    assert grew(before, after, "deploybot_slack_api_calls_total", method="chat.postMessage") == 2
    assert grew(before, after, "deploybot_slack_api_errors_total", method="chat.postMessage", kind="ratelimited") == 1
