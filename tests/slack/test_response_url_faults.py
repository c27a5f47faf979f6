"""Answers sent by response_url when Slack fails them: a 429 waits its Retry-After, a 5xx page goes again (an
ephemeral cannot be read back), an expired or used-up URL falls back to the Web API; never lost. Each behaviour
Slack leaves undocumented (how a 404 is worded, whether a failed POST spends one of the five uses) is a switch of
the stand-in, and the bot is tested under each."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.grammar import parser
from bot.slack.blocks import APPROVE_ACTION
from sandbox.slack import state
from sandbox.slack import workspace as ws
from tests.e2e_support import World, wait_for
from tests.slack.test_e2e_slack import _deploy_to_approval

APPROVED = "Approval sent"


def _approve(w: World, faults: list[dict[str, Any]], **settings: Any) -> str:
    """Bob clicks Approve on a waiting deployment while `faults` hit response_url POSTs; the click's URL id."""
    dep = _deploy_to_approval(w)
    w.control("settings", {"faults": faults, **settings})
    answer = w.click(ws.BOB, w.root(dep)["ts"], APPROVE_ACTION)
    assert answer["status"] == 200 and answer["error"] is None
    wait_for(lambda: w.ecs.calls("ContinueServiceDeployment"), what="the approval")
    return str(answer["request"]["response_url"]).rsplit("/", 1)[-1]


def _posts(w: World, rid: str) -> list[dict[str, Any]]:
    """The POSTs the bot made to one response_url, as the stand-in answered them."""
    return [r for r in w.slack.store.responses if r["url"] == rid]


def _web_api_answers(w: World, user: str) -> list[dict[str, Any]]:
    """The ephemerals the bot sent `user` through the Web API instead (chat.postEphemeral)."""
    return [c for c in w.calls("chat.postEphemeral") if c["params"].get("user") == user]


def _shown(w: World, user: str, needle: str) -> list[dict[str, Any]]:
    return [m for m in w.ephemerals(user) if needle in m["text"]]


@pytest.mark.parametrize("spends_use", [True, False], ids=["429-spends-a-use", "429-spends-none"])
def test_a_429_on_a_response_url_is_retried_after_its_retry_after(world: World, spends_use: bool) -> None:
    w = world
    fault = {"method": "response_url", "status": 429, "retry_after": 2, "times": 1}
    rid = _approve(w, [fault], response_url_faults_spend_use=spends_use)
    wait_for(lambda: _shown(w, ws.BOB, APPROVED), 20, "Bob's answer")
    posts = _posts(w, rid)
    assert [p["status"] for p in posts] == [429, 200], posts  # no POST inside the hold (Slack answers 429 again)
    assert posts[1]["time"] - posts[0]["time"] >= 2.0
    assert len(_shown(w, ws.BOB, APPROVED)) == 1 and _web_api_answers(w, ws.BOB) == []


@pytest.mark.parametrize(
    ("after_store", "copies"),
    [(False, 1), (True, 2)],
    ids=["5xx-page-before-storing", "stored-then-5xx-page"],
)
def test_a_5xx_page_on_a_response_url_is_sent_again_never_lost(world: World, after_store: bool, copies: int) -> None:
    w = world
    rid = _approve(w, [{"method": "response_url", "status": 503, "after_store": after_store, "times": 1}])
    wait_for(lambda: [p for p in _posts(w, rid) if p["status"] == 200], 20, "the answer sent again")
    # A page after storing looks the same as one before: nobody can read an ephemeral back, so Slack cannot say it
    # was shown; showing it twice is better than losing it (slack_sdk's ServerErrorRetryHandler's rule).
    assert [(p["status"], p["stored"]) for p in _posts(w, rid)] == [(503, after_store), (200, True)]
    assert len(_shown(w, ws.BOB, APPROVED)) == copies and _web_api_answers(w, ws.BOB) == []


@pytest.mark.parametrize("wording", ["json", "text"])
@pytest.mark.parametrize("gone", ["expired", "used-up"])
def test_an_expired_or_used_up_response_url_falls_back_to_an_ephemeral(
    world: World, monkeypatch: pytest.MonkeyPatch, gone: str, wording: str
) -> None:
    w = world
    if gone == "expired":
        monkeypatch.setattr(state, "RESPONSE_URL_TTL", -1.0)  # as if the answer came after thirty minutes
    else:
        monkeypatch.setattr(state, "RESPONSE_URL_USES", 0)  # as if its five uses were spent
    rid = _approve(w, [], response_url_errors=wording)
    wait_for(lambda: _shown(w, ws.BOB, APPROVED), 20, "Bob's answer")
    assert [p["status"] for p in _posts(w, rid)] == [404]
    assert [c["status"] for c in _web_api_answers(w, ws.BOB)] == [200]
    assert len(_shown(w, ws.BOB, APPROVED)) == 1


def test_the_error_handlers_answer_survives_a_failing_response_url(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = world

    def broken(*_: object) -> None:
        raise RuntimeError("the parser fell over")

    monkeypatch.setattr(parser, "parse", broken)  # raises on the request thread: Bolt's error handler answers
    w.control("settings", {"faults": [{"method": "response_url", "status": 503, "times": -1}]})
    w.command(ws.ALICE, "status")
    told = wait_for(lambda: _shown(w, ws.ALICE, "something went wrong on my side"), 20, "Alice told of the error")
    assert len(told) == 1
    assert [c["status"] for c in _web_api_answers(w, ws.ALICE)] == [200]  # after the response_url's 5xx pages
