"""The Web API stand-in, driven by the real slack_sdk WebClient over loopback HTTP."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.slack import workspace as ws
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import TOKEN, http

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}
LONG_SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 2900}}


def error_of(call: Callable[[], object]) -> str:
    """Run a call that must fail and return Slack's error code."""
    with pytest.raises(SlackApiError) as info:
        call()
    assert info.value.response.status_code == 200
    return str(info.value.response["error"])


def trigger(sandbox: SlackSandboxHandle) -> str:
    """A trigger id, as the stand-in hands them out with commands and clicks."""
    return sandbox.store.issue_trigger(ws.ALICE)


MODAL = {"type": "modal", "title": {"type": "plain_text", "text": "Deploy"}, "blocks": [SECTION]}
HOME = {"type": "home", "blocks": [SECTION]}

ERROR_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("channel_not_found", "chat_postMessage", {"channel": "C0NOPE", "text": "x"}),
    ("no_text", "chat_postMessage", {"channel": ws.DEPLOYS_CHANNEL, "text": ""}),
    (
        "invalid_blocks",
        "chat_postMessage",
        {"channel": ws.DEPLOYS_CHANNEL, "text": "t", "blocks": [{"text": "no type"}]},
    ),
    ("invalid_blocks", "chat_postMessage", {"channel": ws.DEPLOYS_CHANNEL, "text": "t", "blocks": ["not an object"]}),
    ("invalid_blocks", "chat_postMessage", {"channel": ws.DEPLOYS_CHANNEL, "text": "t", "blocks": [SECTION] * 51}),
    (
        "invalid_blocks",
        "chat_postMessage",
        {
            "channel": ws.DEPLOYS_CHANNEL,
            "text": "t",
            "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
        },
    ),
    (
        "invalid_blocks",
        "chat_postMessage",
        {
            "channel": ws.DEPLOYS_CHANNEL,
            "text": "t",
            "blocks": [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "a",
                            "text": {"type": "plain_text", "text": "x"},
                            "style": "green",
                        }
                    ],
                }
            ],
        },
    ),
    ("msg_too_long", "chat_update", {"channel": ws.DEPLOYS_CHANNEL, "ts": "1.000001", "text": "x" * 4_001}),
    (
        "msg_blocks_too_long",
        "chat_postMessage",
        {"channel": ws.DEPLOYS_CHANNEL, "text": "t", "blocks": [LONG_SECTION] * 5},
    ),
    # Conversations the bot cannot see do not exist for it; archived ones refuse posts.
    ("channel_not_found", "chat_postMessage", {"channel": ws.HIDDEN_CHANNEL, "text": "x"}),
    ("channel_not_found", "chat_postMessage", {"channel": ws.PEOPLE_DM, "text": "x"}),
    ("channel_not_found", "chat_postMessage", {"channel": ws.GROUP_DM, "text": "x"}),
    ("is_archived", "chat_postMessage", {"channel": ws.ARCHIVED_CHANNEL, "text": "x"}),
    ("is_inactive", "chat_update", {"channel": ws.ARCHIVED_CHANNEL, "ts": "1.000001", "text": "x"}),
    ("not_in_channel", "chat_postEphemeral", {"channel": ws.RANDOM_CHANNEL, "user": ws.ALICE, "text": "x"}),
    ("channel_not_found", "conversations_info", {"channel": ws.HIDDEN_CHANNEL}),
    ("channel_not_found", "conversations_history", {"channel": ws.PEOPLE_DM}),
    ("not_in_channel", "conversations_history", {"channel": ws.RANDOM_CHANNEL}),
    ("missing_scope", "conversations_history", {"channel": ws.dm_channel_id(ws.ALICE)}),  # im:history not granted
    ("missing_scope", "users_info", {"user": ws.ALICE}),  # users:read not granted
    ("message_not_found", "chat_update", {"channel": ws.DEPLOYS_CHANNEL, "ts": "1.000001", "text": "x"}),
    ("channel_not_found", "chat_update", {"channel": "C0NOPE", "ts": "1.000001", "text": "x"}),
    ("user_not_in_channel", "chat_postEphemeral", {"channel": ws.INCIDENT_CHANNEL, "user": ws.DAVE, "text": "x"}),
    ("user_not_in_channel", "chat_postEphemeral", {"channel": ws.DEPLOYS_CHANNEL, "user": "U0NOBODY", "text": "x"}),
    ("channel_not_found", "chat_postEphemeral", {"channel": "C0NOPE", "user": ws.ALICE, "text": "x"}),
    ("message_not_found", "chat_getPermalink", {"channel": ws.DEPLOYS_CHANNEL, "message_ts": "1.000001"}),
    ("invalid_trigger_id", "views_open", {"trigger_id": "123.456.abc", "view": MODAL}),
    ("invalid_arguments", "views_open", {"trigger_id": "123.456.abc", "view": HOME}),
    ("user_not_found", "views_publish", {"user_id": "U0NOBODY", "view": HOME}),
    ("invalid_arguments", "views_publish", {"user_id": ws.ALICE, "view": MODAL}),
    ("not_found", "views_update", {"view_id": "V0NOPE", "view": MODAL}),
    ("not_found", "views_update", {"external_id": "nope", "view": MODAL}),
    ("no_such_subteam", "usergroups_users_list", {"usergroup": "S0NOPE"}),
    ("channel_not_found", "conversations_info", {"channel": "C0NOPE"}),
]


@pytest.mark.filterwarnings("ignore:The top-level `text`:UserWarning")  # the no_text cases omit it on purpose
@pytest.mark.parametrize(("error", "method", "args"), ERROR_CASES, ids=[f"{c[1]}-{c[0]}" for c in ERROR_CASES])
def test_error_codes(client: WebClient, error: str, method: str, args: dict[str, Any]) -> None:
    assert error_of(lambda: getattr(client, method)(**args)) == error


def test_invalid_blocks_explains_why(client: WebClient) -> None:
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(
            channel=ws.DEPLOYS_CHANNEL,
            text="x",
            blocks=[SECTION, {**SECTION, "block_id": "b"}, {**SECTION, "block_id": "b"}],
        )
    assert any("duplicate block_id" in m for m in info.value.response["errors"])


@pytest.mark.parametrize(("token", "error"), [(None, "not_authed"), ("xoxb-wrong", "invalid_auth")])
def test_auth_errors(sandbox: SlackSandboxHandle, token: str | None, error: str) -> None:
    assert error_of(lambda: WebClient(token=token, base_url=sandbox.api_url).auth_test()) == error


def test_form_encoded_token_param_is_accepted(sandbox: SlackSandboxHandle) -> None:
    body = f"token={TOKEN}&channel={ws.DEPLOYS_CHANNEL}&text=hi&blocks={json.dumps([SECTION])}".encode()
    req = urllib.request.Request(sandbox.api_url + "chat.postMessage", data=body)
    with urllib.request.urlopen(req, timeout=5) as resp:
        data = json.loads(resp.read())
    assert data["ok"] is True and data["message"]["blocks"] == [SECTION]


def test_read_methods(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    http(
        "POST",
        f"{sandbox.url}/_sandbox/settings",
        {"scopes": [*sandbox.store.settings.scopes, "users:read", "im:read"]},
    )
    auth = client.auth_test()
    assert "users:read" in auth.headers["x-oauth-scopes"].split(",")
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == (ws.TEAM_ID, ws.BOT_USER_ID, ws.BOT_ID)
    assert client.users_info(user=ws.BOB)["user"]["name"] == "bob"
    assert client.usergroups_users_list(usergroup=ws.APPROVERS_GROUP)["users"] == [ws.BOB, ws.CAROL]
    assert client.usergroups_users_list(usergroup=ws.ONCALL_GROUP)["users"] == [ws.CAROL]
    info = client.conversations_info(channel=ws.INCIDENT_CHANNEL)["channel"]
    assert (info["name"], info["is_channel"], info["is_member"]) == ("incident-42", True, True)
    assert client.conversations_info(channel="D0ALICE")["channel"]["is_im"] is True


def test_post_message_shape_and_ts_order(client: WebClient) -> None:
    stamps = []
    for i in range(20):
        resp = client.chat_postMessage(
            channel=ws.DEPLOYS_CHANNEL, text=f"m{i}", blocks=[SECTION], unfurl_links=False, unfurl_media=False
        )
        assert resp["channel"] == ws.DEPLOYS_CHANNEL
        assert resp["message"]["ts"] == resp["ts"] and resp["message"]["bot_id"] == ws.BOT_ID
        stamps.append(resp["ts"])
    assert all(len(t.split(".")[1]) == 6 and t.split(".")[0].isdigit() for t in stamps)
    assert [float(t) for t in stamps] == sorted({float(t) for t in stamps})


def test_thread_replies_update_parent(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    root = client.chat_postMessage(channel="#deploys", text="root")["ts"]
    reply = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="reply", thread_ts=root)
    assert reply["message"]["thread_ts"] == root
    _, body, _ = http("GET", f"{sandbox.url}/_sandbox/messages?channel={ws.DEPLOYS_CHANNEL}")
    parent = body["messages"][0]
    assert (parent["reply_count"], parent["latest_reply"], parent["thread_ts"]) == (1, reply["ts"], root)


def test_post_to_user_id_goes_to_dm(client: WebClient) -> None:
    assert client.chat_postMessage(channel=ws.ALICE, text="hi")["channel"] == "D0ALICE"


@pytest.mark.filterwarnings("ignore:The top-level `text`:UserWarning")
def test_update_semantics(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    ts = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="v1", blocks=[SECTION])["ts"]
    new = [{"type": "section", "text": {"type": "mrkdwn", "text": "v2"}}]
    resp = client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=ts, text="v2", blocks=new)
    assert (resp["ts"], resp["text"], resp["message"]["blocks"]) == (ts, "v2", new)
    client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=ts, text="v3")  # text only: blocks go away
    stored = sandbox.store.find_message(ws.DEPLOYS_CHANNEL, ts)
    assert stored is not None and stored["text"] == "v3" and "blocks" not in stored
    assert error_of(lambda: client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=ts, text="")) == "no_text"


def test_cannot_update_a_human_message(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    _, body, _ = http("POST", f"{sandbox.url}/_sandbox/post", {"user": ws.ALICE, "channel": "deploys", "text": "hi"})
    assert (
        error_of(lambda: client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=body["ts"], text="x"))
        == "cant_update_message"
    )


def test_ephemeral_and_permalink(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    resp = client.chat_postEphemeral(channel=ws.DEPLOYS_CHANNEL, user=ws.DAVE, text="only you")
    assert sandbox.store.find_ephemeral(ws.DAVE, resp["message_ts"]) is not None
    root = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="root")["ts"]
    reply = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="r", thread_ts=root)["ts"]
    link = client.chat_getPermalink(channel=ws.DEPLOYS_CHANNEL, message_ts=reply)["permalink"]
    assert link == (
        f"{sandbox.url}/archives/{ws.DEPLOYS_CHANNEL}/p{reply.replace('.', '')}"
        f"?thread_ts={root}&cid={ws.DEPLOYS_CHANNEL}"
    )


def test_views_open_trigger_rules(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    tid = trigger(sandbox)
    view = client.views_open(trigger_id=tid, view=MODAL)["view"]
    assert view["id"].startswith("V") and view["title"] == MODAL["title"] and view["state"] == {"values": {}}
    assert sandbox.store.user_views(ws.ALICE)["modals"][0]["id"] == view["id"]
    assert error_of(lambda: client.views_open(trigger_id=tid, view=MODAL)) == "exchanged_trigger_id"
    old = trigger(sandbox)
    http("POST", f"{sandbox.url}/_sandbox/settings", {"advance_clock": 3.5})
    assert error_of(lambda: client.views_open(trigger_id=old, view=MODAL)) == "expired_trigger_id"


def test_views_publish_and_update(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    home = client.views_publish(user_id=ws.BOB, view=HOME)["view"]
    assert sandbox.store.user_views(ws.BOB)["home"]["id"] == home["id"]
    modal = client.views_open(trigger_id=trigger(sandbox), view={**MODAL, "external_id": "ext-1"})["view"]
    changed = {**MODAL, "title": {"type": "plain_text", "text": "Changed"}}
    by_ext = client.views_update(external_id="ext-1", view=changed)["view"]
    assert by_ext["id"] == modal["id"] and by_ext["title"]["text"] == "Changed"
    assert error_of(lambda: client.views_update(view_id=modal["id"], view=MODAL, hash="stale")) == "hash_conflict"
    again = client.views_update(view_id=modal["id"], view=MODAL, hash=by_ext["hash"])["view"]
    assert again["title"]["text"] == "Deploy"


def test_rate_limit_emulation(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="a")
    client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="b")  # off by default
    status, body, _ = http("POST", f"{sandbox.url}/_sandbox/settings", {"rate_limit": True})
    assert status == 200 and body["settings"]["rate_limit"] is True
    client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="c")
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="d")
    resp = info.value.response
    assert resp.status_code == 429 and resp["error"] == "ratelimited"
    assert int(resp.headers["Retry-After"]) >= 1
    client.chat_postMessage(channel=ws.INCIDENT_CHANNEL, text="other channel is fine")
    calls = http("GET", f"{sandbox.url}/_sandbox/calls?method=chat.postMessage")[1]["calls"]
    assert [c["status"] for c in calls] == [200, 200, 200, 429, 200]


def test_a_frozen_clock_keeps_the_rate_window_shut_until_it_is_moved_on(
    client: WebClient, sandbox: SlackSandboxHandle
) -> None:
    settings = f"{sandbox.url}/_sandbox/settings"
    assert http("POST", settings, {"rate_limit": True, "freeze_clock": True})[0] == 200
    client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="a")
    time.sleep(1.1)  # real time passes; the stand-in's does not
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="b")
    assert info.value.response.headers["Retry-After"] == "1"
    http("POST", settings, {"advance_clock": 1.0})
    assert client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="c")["ok"]
    http("POST", settings, {"freeze_clock": False, "advance_clock": -1.0})
    time.sleep(1.05)  # running again: a real second opens the window
    assert client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="d")["ok"]


def test_an_injected_429_holds_until_its_retry_after_has_passed(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    posted = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="a")
    faults = [
        {"method": "chat.update", "status": 429, "retry_after": 30},
        {"method": "chat.postMessage", "status": 429},
    ]
    assert http("POST", f"{sandbox.url}/_sandbox/settings", {"faults": faults})[0] == 200
    for _ in range(2):  # the fault was used up by the first call; Slack still refuses the second, early one
        with pytest.raises(SlackApiError) as info:
            client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=posted["ts"], text="b")
        assert info.value.response.status_code == 429 and int(info.value.response.headers["Retry-After"]) >= 29
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="c")
    # chat.postMessage is held per channel; other methods are not held by chat.update's 429.
    client.chat_postMessage(channel=ws.INCIDENT_CHANNEL, text="other channel is fine")
    assert http("POST", f"{sandbox.url}/_sandbox/settings", {"faults": []})[0] == 200
    client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=posted["ts"], text="b")  # clearing the faults ends the holds


def test_an_outage_lapses_and_a_hold_ends_on_the_stand_ins_clock(
    client: WebClient, sandbox: SlackSandboxHandle
) -> None:
    settings = f"{sandbox.url}/_sandbox/settings"
    outage = [{"method": "*", "status": 503, "times": -1, "seconds": 300}]
    assert http("POST", settings, {"freeze_clock": True, "faults": outage})[0] == 200
    http("POST", settings, {"advance_clock": 299.0})
    with pytest.raises(SlackApiError) as info:
        client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="a")
    assert info.value.response.status_code == 503
    http("POST", settings, {"advance_clock": 1.0})  # five minutes of Slack's clock, no real time
    posted = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="b")
    # A 429's Retry-After runs on the same clock: held until it is moved on, however long the test really takes.
    http("POST", settings, {"faults": [{"method": "chat.update", "status": 429, "retry_after": 30}]})
    for _ in range(2):
        with pytest.raises(SlackApiError):
            client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=posted["ts"], text="c")
    http("POST", settings, {"advance_clock": 29.0})
    with pytest.raises(SlackApiError) as info:
        client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=posted["ts"], text="c")
    assert info.value.response.headers["Retry-After"] == "1"
    http("POST", settings, {"advance_clock": 1.0})
    assert client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=posted["ts"], text="c")["ok"]


def test_seeded_faults_draw_the_same_calls(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    def pattern() -> list[bool]:
        body = {"faults": [{"method": "auth.test", "error": "fatal_error", "rate": 0.5, "times": -1}], "fault_seed": 7}
        assert http("POST", f"{sandbox.url}/_sandbox/settings", body)[0] == 200
        failed = []
        for _ in range(20):
            try:
                client.auth_test()
                failed.append(False)
            except SlackApiError:
                failed.append(True)
        return failed

    first = pattern()
    assert first == pattern() and 0 < sum(first) < 20


def test_calls_log_and_reset(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    with pytest.raises(SlackApiError):
        client.users_info(user=ws.ALICE)  # users:read is not granted
    client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="hello")
    _, body, _ = http("GET", f"{sandbox.url}/_sandbox/calls")
    assert [c["method"] for c in body["calls"]] == ["users.info", "chat.postMessage"]
    assert body["calls"][1]["params"]["text"] == "hello" and "token" not in body["calls"][1]["params"]
    assert http("POST", f"{sandbox.url}/_sandbox/reset", {})[0] == 200
    assert http("GET", f"{sandbox.url}/_sandbox/calls")[1]["calls"] == []
    assert http("GET", f"{sandbox.url}/_sandbox/state")[1]["channels"] == {}


def test_latency_spread_adds_a_draw_per_slowed_call(
    client: WebClient, sandbox: SlackSandboxHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    draws: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        draws.append((low, high))
        return high  # the longest the spread allows

    monkeypatch.setattr("sandbox.slack.webapi.random.uniform", uniform)
    body = {"latency": 0.1, "latency_spread": 0.4, "latency_methods": ["chat.postMessage"]}
    assert http("POST", f"{sandbox.url}/_sandbox/settings", body)[1]["settings"]["latency_spread"] == 0.4
    started = time.monotonic()
    client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="slow")
    took = time.monotonic() - started
    client.auth_test()  # not slowed: no draw
    http("POST", f"{sandbox.url}/_sandbox/settings", {"latency": 0, "latency_spread": 0, "latency_methods": []})
    assert draws == [(0, 0.4)]
    assert took >= 0.5  # latency + the draw (a lower bound only: a loaded machine is slower, never faster)


def test_latency_for_some_methods_counts_calls_in_flight_and_does_the_work_anyway(
    client: WebClient, sandbox: SlackSandboxHandle
) -> None:
    http("POST", f"{sandbox.url}/_sandbox/settings", {"latency": 3, "latency_methods": ["chat.update"]})
    posted = client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="quick")  # not slowed
    impatient = WebClient(token=TOKEN, base_url=sandbox.api_url, timeout=1)
    with pytest.raises(OSError):  # the caller gives up (or dies) while Slack is still at it
        impatient.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=posted["ts"], text="slow")
    assert sandbox.store.in_flight["chat.update"] == 1
    http("POST", f"{sandbox.url}/_sandbox/settings", {"latency": 0, "latency_methods": []})
    deadline = time.monotonic() + 10
    while sandbox.store.in_flight["chat.update"]:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    stored = sandbox.store.find_message(ws.DEPLOYS_CHANNEL, posted["ts"])
    assert stored is not None and stored["text"] == "slow"  # done all the same


def test_chat_update_tier_lets_n_calls_through_in_any_minute_of_the_stand_ins_clock(
    client: WebClient, sandbox: SlackSandboxHandle
) -> None:
    # Slack's Tier 3 for chat.update (50+ a minute per workspace): off by default, then 2 a minute, workspace-wide.
    settings = f"{sandbox.url}/_sandbox/settings"
    roots = [client.chat_postMessage(channel=c, text="root")["ts"] for c in (ws.DEPLOYS_CHANNEL, ws.INCIDENT_CHANNEL)]
    for i in range(3):
        assert client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=roots[0], text=f"free {i}")["ok"]
    status, body, _ = http("POST", settings, {"update_tier_per_minute": 2, "freeze_clock": True})
    assert status == 200 and body["settings"]["update_tier_per_minute"] == 2
    assert client.chat_update(channel=ws.DEPLOYS_CHANNEL, ts=roots[0], text="one")["ok"]
    http("POST", settings, {"advance_clock": 20.0})
    assert client.chat_update(channel=ws.INCIDENT_CHANNEL, ts=roots[1], text="two")["ok"]  # another channel counts
    with pytest.raises(SlackApiError) as info:
        client.chat_update(channel=ws.INCIDENT_CHANNEL, ts=roots[1], text="three")
    resp = info.value.response
    assert resp.status_code == 429 and resp["error"] == "ratelimited"
    assert resp.headers["Retry-After"] == "40"  # until the first call leaves the window
    assert client.chat_postMessage(channel=ws.DEPLOYS_CHANNEL, text="posts are another method")["ok"]
    http("POST", settings, {"advance_clock": 40.0})
    assert client.chat_update(channel=ws.INCIDENT_CHANNEL, ts=roots[1], text="three")["ok"]
    assert (sandbox.store.find_message(ws.INCIDENT_CHANNEL, roots[1]) or {}).get("text") == "three"
