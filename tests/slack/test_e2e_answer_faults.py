"""The answer to a person when Slack fails on it: a click from the App Home has no response_url, so the bot answers
in its DM with the person, which it cannot read back (no im:history). A 5xx page is retried (as slack_sdk's own
ServerErrorRetryHandler does), a `fatal_error` — "some aspect may have succeeded" — is never sent a second time."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlencode

import pytest

from bot.slack.blocks import APPROVE_ACTION
from sandbox.slack import workspace as ws
from tests.e2e_support import World, wait_for
from tests.reliability import mutate
from tests.reliability.conftest import signed
from tests.slack.test_e2e_slack import _deploy_to_approval


def _approve_from_home(w: World, fault: dict[str, Any]) -> int:
    """Bob opens his Home tab and approves the waiting deployment there, while `fault` is in force."""
    dep = _deploy_to_approval(w)
    w.control("app_home_opened", {"user": ws.BOB})
    home = wait_for(lambda: w.snapshot()["views"][ws.BOB]["home"], what="Bob's Home tab")
    w.control("settings", {"faults": [{"method": "chat.postMessage", "times": 1, **fault}]})
    w.control("click", {"user": ws.BOB, "view_id": home["id"], "action_id": APPROVE_ACTION})
    wait_for(lambda: w.ecs.calls("ContinueServiceDeployment"), what="the approval from the Home tab")
    return dep


def _dm(w: World, user: str) -> list[dict[str, Any]]:
    return w.messages(ws.dm_channel_id(user))


@pytest.mark.parametrize("status", [500, 503])
def test_an_app_home_answer_that_meets_a_5xx_page_still_reaches_the_person(world: World, status: int) -> None:
    w = world
    _approve_from_home(w, {"status": status})
    answer = wait_for(lambda: [m for m in _dm(w, ws.BOB) if "Approval sent" in m["text"]], 15, "Bob's answer")
    assert len(answer) == 1
    assert [c["status"] for c in w.calls("chat.postMessage") if c["params"].get("channel") == ws.BOB] == [status, 200]


def test_an_app_home_answer_answered_fatal_error_after_storing_is_not_sent_twice(world: World) -> None:
    w = world
    _approve_from_home(w, {"error": "fatal_error", "after_store": True})
    wait_for(lambda: len(w.calls("views.publish")) >= 2, what="the Home tab re-rendered after the click")
    wait_for(lambda: [m for m in _dm(w, ws.BOB) if "Approval sent" in m["text"]], 15, "Bob's answer")
    assert len([c for c in w.calls("chat.postMessage") if c["params"].get("channel") == ws.BOB]) == 1
    assert len([m for m in _dm(w, ws.BOB) if "Approval sent" in m["text"]]) == 1


def test_an_ephemeral_answered_fatal_error_after_storing_is_not_sent_again_as_a_dm(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    w = world
    fault = {"method": "chat.postEphemeral", "error": "fatal_error", "after_store": True, "times": 1}
    w.control("settings", {"faults": [fault]})
    # A click whose response_url is not Slack's is answered through the Web API: an ephemeral in the channel.
    click = urlencode({"payload": json.dumps(mutate.click(user=ws.DAVE))}).encode()
    with caplog.at_level(logging.WARNING, logger="handlers.replies"):
        assert signed(w, click, "application/x-www-form-urlencoded").status == 200
        wait_for(lambda: [r for r in caplog.records if "may have shown" in r.getMessage()], 15, "the listener's end")
    assert [m["text"] for m in w.ephemerals(ws.DAVE) if "999999" in m["text"]] != []
    assert len(w.ephemerals(ws.DAVE)) == 1 and _dm(w, ws.DAVE) == []  # shown once, not again in a DM
