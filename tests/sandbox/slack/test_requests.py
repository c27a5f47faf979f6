"""Signed requests to the bot (commands, clicks, submissions, events) and response_url."""

from __future__ import annotations

import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from sandbox.slack import workspace as ws
from sandbox.slack.delivery import sign
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import SECRET, TOKEN, FakeBot, Received, http

APPROVE = {
    "type": "button",
    "action_id": "approve",
    "text": {"type": "plain_text", "text": "Approve"},
    "style": "primary",
    "value": "dep-1:hook-1",
    "confirm": {
        "title": {"type": "plain_text", "text": "Sure?"},
        "text": {"type": "plain_text", "text": "Go"},
        "confirm": {"type": "plain_text", "text": "Yes"},
        "deny": {"type": "plain_text", "text": "No"},
    },
}
ROLLBACK = {
    "type": "button",
    "action_id": "rollback",
    "text": {"type": "plain_text", "text": "Roll back"},
    "style": "danger",
    "value": "dep-1",
}
BLOCKS: list[dict[str, Any]] = [
    {
        "type": "section",
        "block_id": "summary",
        "text": {"type": "mrkdwn", "text": "*catalog*"},
        "accessory": {"type": "button", "action_id": "details", "text": {"type": "plain_text", "text": "Details"}},
    },
    {"type": "actions", "block_id": "decide-v1", "elements": [APPROVE, ROLLBACK]},
]
MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "deploy_modal",
    "private_metadata": "C0DEPLOYS",
    "title": {"type": "plain_text", "text": "Deploy"},
    "submit": {"type": "plain_text", "text": "Deploy"},
    "blocks": [
        {
            "type": "input",
            "block_id": "service",
            "label": {"type": "plain_text", "text": "Service"},
            "element": {
                "type": "static_select",
                "action_id": "pick",
                "options": [
                    {"text": {"type": "plain_text", "text": "catalog"}, "value": "catalog"},
                    {"text": {"type": "plain_text", "text": "checkout"}, "value": "checkout"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "strategy",
            "label": {"type": "plain_text", "text": "Strategy"},
            "element": {
                "type": "radio_buttons",
                "action_id": "choose",
                "initial_option": {"text": {"type": "plain_text", "text": "canary"}, "value": "canary"},
                "options": [
                    {"text": {"type": "plain_text", "text": "canary"}, "value": "canary"},
                    {"text": {"type": "plain_text", "text": "linear"}, "value": "linear"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "reason",
            "optional": True,
            "label": {"type": "plain_text", "text": "Why"},
            "element": {"type": "plain_text_input", "action_id": "text"},
        },
    ],
}


def control(sandbox: SlackSandboxHandle, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST to the control API and insist on success."""
    status, data, _ = http("POST", f"{sandbox.url}/_sandbox/{name}", body)
    assert status == 200, data
    return dict(data)


def assert_signed(rec: Received) -> None:
    """Slack's signature: accepted with the right secret, rejected with another."""
    assert rec.path == "/slack/events"
    assert rec.valid and not rec.valid_with_wrong_secret
    assert abs(int(rec.headers["X-Slack-Request-Timestamp"]) - time.time()) < 10


def post_root(sandbox: SlackSandboxHandle, thread_ts: str | None = None) -> str:
    """The bot posts a message with buttons; returns its ts."""
    client = WebClient(token=TOKEN, base_url=sandbox.api_url)
    return str(
        client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="deploy", blocks=BLOCKS, thread_ts=thread_ts)["ts"]
    )


def test_sign_matches_slack_sdk_verifier() -> None:
    body = b"token=x&text=%2Fdeploy"
    headers = sign(SECRET, body)
    assert SignatureVerifier(SECRET).is_valid_request(body, headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body + b"x", headers)
    assert not SignatureVerifier(SECRET).is_valid_request(body, sign(SECRET, body, int(time.time()) - 400))


def test_command_is_formatted_and_signed_like_slack(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    fake_bot.ack("")
    out = control(wired, "command", {"user": ws.ALICE, "channel": ws.DEPLOYS_CHANNEL, "text": "catalog canary 10%"})
    rec = fake_bot.last
    assert_signed(rec)
    assert rec.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert list(rec.form) == [
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "is_enterprise_install",
        "response_url",
        "trigger_id",
    ]
    assert rec.form["command"] == "/deploy" and rec.form["text"] == "catalog canary 10%"
    assert (rec.form["team_id"], rec.form["team_domain"]) == (ws.TEAM_ID, ws.TEAM_DOMAIN)
    assert (rec.form["user_id"], rec.form["user_name"], rec.form["channel_name"]) == (ws.ALICE, "alice", "deploys")
    assert rec.form["response_url"].startswith(wired.url + "/_sandbox/response/")
    assert out["status"] == 200 and out["shown"] is None and out["request"] == rec.form


def test_command_ack_text_becomes_an_ephemeral(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    fake_bot.ack({"text": "Not allowed: deployers only"})
    out = control(wired, "command", {"user": ws.DAVE, "channel": "deploys", "text": "catalog"})
    assert out["json"] == {"text": "Not allowed: deployers only"}
    assert out["shown"]["is_ephemeral"] is True
    assert wired.store.ephemerals[ws.DAVE][0]["text"] == "Not allowed: deployers only"
    fake_bot.ack({"response_type": "in_channel", "text": "Rolling back"})
    control(wired, "command", {"user": ws.CAROL, "channel": ws.INCIDENT_CHANNEL, "text": "rollback catalog"})
    assert wired.store.channels[ws.INCIDENT_CHANNEL][0]["text"] == "Rolling back"


def test_command_trigger_opens_a_modal(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    opened: list[Any] = []
    client = WebClient(token=TOKEN, base_url=wired.api_url)
    fake_bot.on_request = lambda rec: opened.append(client.views_open(trigger_id=rec.form["trigger_id"], view=MODAL))
    control(wired, "command", {"user": ws.ALICE, "channel": ws.DEPLOYS_CHANNEL, "text": ""})
    assert opened[0]["view"]["callback_id"] == "deploy_modal"
    _, state, _ = http("GET", f"{wired.url}/_sandbox/state")
    assert state["views"][ws.ALICE]["modals"][0]["id"] == opened[0]["view"]["id"]


def test_bad_secret_bot_rejects_and_user_sees_the_failure(sandbox: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    from sandbox.slack import server

    with server.start(bot_url=fake_bot.url, signing_secret="some-other-secret") as other:
        out = control(other, "command", {"user": ws.ALICE, "text": "x"})
    assert not fake_bot.last.valid and out["status"] == 401 and out["error"] == "http_client_error"
    assert out["shown"]["text"] == '/deploy failed with the error "http_client_error"'


def test_unreachable_and_slow_bots(sandbox: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    assert control(sandbox, "command", {"user": ws.ALICE, "text": "x"})["error"] == "dispatch_failed"
    sandbox.set_bot_url(fake_bot.url)
    control(sandbox, "settings", {"ack_timeout": 0.2})
    fake_bot.on_request = lambda rec: time.sleep(0.5)
    assert control(sandbox, "command", {"user": ws.ALICE, "text": "x"})["error"] == "operation_timeout"


def test_click_builds_block_actions_from_the_stored_message(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    root = post_root(wired)
    reply = post_root(wired, thread_ts=root)
    fake_bot.ack("")
    out = control(
        wired, "click", {"user": ws.BOB, "channel": ws.DEPLOYS_CHANNEL, "message_ts": reply, "action_id": "approve"}
    )
    rec = fake_bot.last
    assert_signed(rec)
    assert list(rec.form) == ["payload"] and out["status"] == 200
    p = rec.payload
    assert p is not None and p["type"] == "block_actions"
    assert p["user"] == {"id": ws.BOB, "username": "bob", "name": "bob", "team_id": ws.TEAM_ID}
    assert p["container"] == {
        "type": "message",
        "message_ts": reply,
        "channel_id": ws.DEPLOYS_CHANNEL,
        "is_ephemeral": False,
    }
    assert p["channel"] == {"id": ws.DEPLOYS_CHANNEL, "name": "deploys"}
    assert (p["message"]["ts"], p["message"]["thread_ts"], p["message"]["blocks"]) == (reply, root, BLOCKS)
    action = p["actions"][0]
    assert (action["action_id"], action["block_id"], action["value"], action["style"], action["type"]) == (
        "approve",
        "decide-v1",
        "dep-1:hook-1",
        "primary",
        "button",
    )
    assert action["text"] == APPROVE["text"] and float(action["action_ts"]) > 0
    assert p["response_url"].startswith(wired.url) and p["trigger_id"] and p["api_app_id"] == ws.APP_ID


def test_click_overrides_and_accessory(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    ts = post_root(wired)
    control(
        wired,
        "click",
        {
            "user": ws.BOB,
            "channel": "deploys",
            "message_ts": ts,
            "action_id": "rollback",
            "value": "dep-999",
            "block_id": "decide-v0",
        },
    )
    p = fake_bot.last.payload
    assert p is not None
    action = p["actions"][0]
    assert (action["value"], action["block_id"], action["style"]) == ("dep-999", "decide-v0", "danger")
    control(wired, "click", {"user": ws.BOB, "channel": "deploys", "message_ts": ts, "action_id": "details"})
    # payload is Optional; a click always carries one, and a None here fails the test as a TypeError.
    assert fake_bot.last.payload["actions"][0]["block_id"] == "summary"  # type: ignore[index]
    status, body, _ = http(
        "POST",
        f"{wired.url}/_sandbox/click",
        {"user": ws.BOB, "channel": "deploys", "message_ts": ts, "action_id": "nope"},
    )
    assert (status, body["error"]) == (404, "action_not_found")


def test_click_on_ephemeral_and_home_tab(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    client = WebClient(token=TOKEN, base_url=wired.api_url)
    ts = client.chat_postEphemeral(channel=ws.DEPLOYS_CHANNEL, user=ws.ALICE, text="t", blocks=BLOCKS)["message_ts"]
    control(wired, "click", {"user": ws.ALICE, "channel": ws.DEPLOYS_CHANNEL, "message_ts": ts, "action_id": "approve"})
    p = fake_bot.last.payload
    assert p is not None and p["container"]["is_ephemeral"] is True and "message" not in p
    home = client.views_publish(user_id=ws.ALICE, view={"type": "home", "blocks": BLOCKS})["view"]
    control(wired, "click", {"user": ws.ALICE, "view_id": home["id"], "action_id": "rollback"})
    p = fake_bot.last.payload
    assert p is not None and p["container"] == {"type": "view", "view_id": home["id"]}
    assert p["view"]["type"] == "home" and p["actions"][0]["value"] == "dep-1"


def test_submit_view_state_values_and_errors(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    client = WebClient(token=TOKEN, base_url=wired.api_url)
    view = client.views_open(trigger_id=wired.store.issue_trigger(ws.ALICE), view=MODAL)["view"]
    fake_bot.ack({"response_action": "errors", "errors": {"reason": "Say why"}})
    out = control(
        wired,
        "submit_view",
        {"user": ws.ALICE, "view_id": view["id"], "values": {"service": {"pick": "catalog"}, "text": ""}},
    )
    assert_signed(fake_bot.last)
    p = fake_bot.last.payload
    assert p is not None and p["type"] == "view_submission" and p["view"]["callback_id"] == "deploy_modal"
    assert p["view"]["state"]["values"] == {
        "service": {"pick": {"type": "static_select", "selected_option": MODAL["blocks"][0]["element"]["options"][0]}},
        "strategy": {
            "choose": {
                "type": "radio_buttons",
                "selected_option": {"text": {"type": "plain_text", "text": "canary"}, "value": "canary"},
            }
        },
        "reason": {"text": {"type": "plain_text_input", "value": None}},
    }
    assert out["outcome"] == "errors"
    _, state, _ = http("GET", f"{wired.url}/_sandbox/state")
    assert state["views"][ws.ALICE]["modals"][0]["errors"] == {"reason": "Say why"}
    fake_bot.ack("")
    out = control(wired, "submit_view", {"user": ws.ALICE, "view_id": view["id"], "values": {"text": "hotfix"}})
    assert out["outcome"] == "closed" and wired.store.user_views(ws.ALICE)["modals"] == []


def test_app_home_opened_event(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    out = control(wired, "app_home_opened", {"user": ws.CAROL})
    rec = fake_bot.last
    assert_signed(rec)
    assert rec.headers["Content-Type"] == "application/json" and out["status"] == 200
    p = rec.payload
    assert p is not None and p["type"] == "event_callback" and p["team_id"] == ws.TEAM_ID
    assert p["event"] == {
        **p["event"],
        "type": "app_home_opened",
        "user": ws.CAROL,
        "tab": "home",
        "channel": "D0CAROL",
    }
    assert p["authorizations"][0]["user_id"] == ws.BOT_USER_ID and p["event_id"].startswith("Ev")


def test_response_url_behaviour(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    ts = post_root(wired)
    control(wired, "click", {"user": ws.BOB, "channel": ws.DEPLOYS_CHANNEL, "message_ts": ts, "action_id": "approve"})
    p = fake_bot.last.payload
    assert p is not None
    url = p["response_url"]
    assert http("POST", url, {"text": "only you"})[0] == 200
    assert wired.store.ephemerals[ws.BOB][-1]["text"] == "only you"
    assert http("POST", url, {"response_type": "in_channel", "text": "everyone", "thread_ts": ts})[0] == 200
    assert wired.store.channels[ws.DEPLOYS_CHANNEL][-1]["thread_ts"] == ts
    assert http("POST", url, {"replace_original": True, "text": "Approved by bob"})[0] == 200
    replaced = wired.store.find_message(ws.DEPLOYS_CHANNEL, ts)
    assert replaced is not None and replaced["text"] == "Approved by bob" and "blocks" not in replaced
    assert http("POST", url, {"delete_original": True})[0] == 200
    assert wired.store.find_message(ws.DEPLOYS_CHANNEL, ts) is None
    assert http("POST", url, {"text": "fifth"})[0] == 200
    assert http("POST", url, {"text": "sixth"})[:2] == (404, {"ok": False, "error": "used_url"})


def test_response_url_expires_after_30_minutes(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    control(wired, "command", {"user": ws.ALICE, "text": "x"})
    url = fake_bot.last.form["response_url"]
    control(wired, "settings", {"advance_clock": 1801})
    assert http("POST", url, {"text": "late"})[:2] == (404, {"ok": False, "error": "expired_url"})
    assert http("POST", wired.url + "/_sandbox/response/nope", {"text": "x"})[0] == 404


def test_response_url_faults(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    control(wired, "command", {"user": ws.ALICE, "text": "x"})
    url = fake_bot.last.form["response_url"]
    rid = url.rsplit("/", 1)[-1]
    faults = [
        {"method": "response_url", "status": 429, "retry_after": 1, "times": 1},
        {"method": "response_url", "status": 503, "times": 1},
        {"method": "response_url", "status": 500, "after_store": True, "times": 1},
        {"method": "*", "status": 503, "times": -1},  # the Web API's: never a response_url's
    ]
    control(wired, "settings", {"faults": faults, "response_url_faults_spend_use": False})
    status, _, headers = http("POST", url, {"text": "one"})
    assert (status, headers.get("Retry-After")) == (429, "1")
    assert http("POST", url, {"text": "one"})[0] == 429  # held until Retry-After has passed
    time.sleep(1.05)
    status, body, _ = http("POST", url, {"text": "one"})
    assert status == 503 and "<html>" in str(body)
    assert http("POST", url, {"text": "two"})[0] == 500  # stored, then the page
    assert http("POST", url, {"text": "three"})[0] == 200
    assert [m["text"] for m in wired.store.ephemerals[ws.ALICE]] == ["two", "three"]
    log = [(r["status"], r["stored"], r["fault"]) for r in wired.store.responses if r["url"] == rid]
    assert log == [
        (429, False, "429"),
        (429, False, "held"),
        (503, False, "503"),
        (500, True, "500 after storing"),
        (200, True, None),
    ]
    assert wired.store.response_urls[rid].uses == 2  # failed POSTs spent none (the switch)


def test_response_url_errors_worded_as_text(wired: SlackSandboxHandle, fake_bot: FakeBot) -> None:
    control(wired, "command", {"user": ws.ALICE, "text": "x"})
    url = fake_bot.last.form["response_url"]
    control(wired, "settings", {"response_url_errors": "text", "advance_clock": 1801})
    assert http("POST", url, {"text": "late"})[:2] == (404, "expired_url")
