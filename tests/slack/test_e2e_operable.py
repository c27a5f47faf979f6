"""What an on-call engineer sees of a full run over real loopback HTTP: the JSON log lines (with what each is about,
never a secret or a raw request) and /metrics, scraped while deployments run. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from bot.logs import MASK, LogFormat, configure_logging
from bot.slack.blocks import APPROVE_ACTION
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET
from tests.e2e_support import World, awaiting

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
