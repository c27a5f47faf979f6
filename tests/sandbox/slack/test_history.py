"""conversations.history / conversations.replies and message metadata, through the real WebClient."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from slack_sdk import WebClient

from sandbox.slack import workspace as ws
from sandbox.slack.server import SlackSandboxHandle
from tests.sandbox.slack.conftest import http
from tests.sandbox.slack.test_webapi import error_of

CH = ws.DEPLOYS_CHANNEL
META = {"event_type": "deploybot_outbox", "event_payload": {"key": "dep:1:root"}}


def post(client: WebClient, text: str, **kwargs: Any) -> str:
    """Post as the bot and return the ts."""
    return str(client.chat_postMessage(channel=CH, text=text, **kwargs)["ts"])


def test_metadata_is_stored_and_shown_only_when_asked(client: WebClient) -> None:
    ts = post(client, "root", metadata=META)
    plain = client.conversations_history(channel=CH)
    assert [m["ts"] for m in plain["messages"]] == [ts]
    assert "metadata" not in plain["messages"][0]
    full = client.conversations_history(channel=CH, include_all_metadata=True)
    assert full["messages"][0]["metadata"] == META
    assert full["has_more"] is False and full["response_metadata"] == {"next_cursor": ""}


def test_history_is_top_level_newest_first_with_a_time_window(client: WebClient) -> None:
    first, second = post(client, "one"), post(client, "two")
    post(client, "reply", thread_ts=first)
    third = post(client, "three")
    assert [m["ts"] for m in client.conversations_history(channel=CH)["messages"]] == [third, second, first]
    window = client.conversations_history(channel=CH, oldest=first, latest=third)
    assert [m["ts"] for m in window["messages"]] == [second]  # both bounds exclusive by default
    inclusive = client.conversations_history(channel=CH, oldest=first, latest=third, inclusive=True)
    assert [m["ts"] for m in inclusive["messages"]] == [third, second, first]


def test_history_pages_with_a_cursor(client: WebClient) -> None:
    sent = [post(client, f"m{i}") for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        page = client.conversations_history(channel=CH, limit=2, cursor=cursor)
        seen += [m["ts"] for m in page["messages"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == sorted(sent, key=Decimal, reverse=True)
    assert cursor == ""


def test_replies_give_the_parent_then_the_thread_in_order(client: WebClient) -> None:
    root = post(client, "root")
    post(client, "elsewhere")
    r1 = post(client, "r1", thread_ts=root, metadata=META)
    r2 = post(client, "r2", thread_ts=root)
    got = client.conversations_replies(channel=CH, ts=root, include_all_metadata=True)
    assert [m["ts"] for m in got["messages"]] == [root, r1, r2]
    assert got["messages"][1]["metadata"] == META and "metadata" not in got["messages"][2]
    later = client.conversations_replies(channel=CH, ts=root, oldest=r1)
    assert [m["ts"] for m in later["messages"]] == [root, r2]  # the parent always leads the first page
    paged = client.conversations_replies(channel=CH, ts=root, limit=2)
    assert paged["has_more"] is True
    rest = client.conversations_replies(channel=CH, ts=root, limit=2, cursor=paged["response_metadata"]["next_cursor"])
    assert [m["ts"] for m in rest["messages"]] == [r2] and rest["has_more"] is False
    alone = client.conversations_replies(channel=CH, ts=r1)
    assert [m["ts"] for m in alone["messages"]] == [r1]


@pytest.mark.parametrize(
    ("error", "method", "kwargs"),
    [
        ("channel_not_found", "conversations_history", {"channel": "C0NOPE"}),
        ("invalid_ts_oldest", "conversations_history", {"channel": CH, "oldest": "yesterday"}),
        ("invalid_ts_latest", "conversations_history", {"channel": CH, "latest": "nan"}),
        ("invalid_cursor", "conversations_history", {"channel": CH, "cursor": "bm9wZQ=="}),
        ("invalid_limit", "conversations_history", {"channel": CH, "limit": "ten"}),
        ("channel_not_found", "conversations_replies", {"channel": "C0NOPE", "ts": "1.000001"}),
        ("thread_not_found", "conversations_replies", {"channel": CH, "ts": "1.000001"}),
        ("thread_not_found", "conversations_replies", {"channel": CH, "ts": ""}),
        ("invalid_metadata_format", "chat_postMessage", {"channel": CH, "text": "x", "metadata": "{not json"}),
        ("invalid_metadata_schema", "chat_postMessage", {"channel": CH, "text": "x", "metadata": {"event_type": "x"}}),
    ],
)
def test_errors(client: WebClient, error: str, method: str, kwargs: dict[str, Any]) -> None:
    assert error_of(lambda: getattr(client, method)(**kwargs)) == error


def test_refused_metadata_posts_nothing(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    error_of(lambda: client.chat_postMessage(channel=CH, text="x", metadata={"event_payload": {}}))
    _, body, _ = http("GET", f"{sandbox.url}/_sandbox/messages?channel={CH}")
    assert body["messages"] == []


def test_form_encoded_metadata_and_get_requests(sandbox: SlackSandboxHandle) -> None:
    """Metadata as JSON text in a form post, and history read by GET with a query string, as curl would."""
    form = urllib.parse.urlencode({"channel": CH, "text": "hi", "metadata": json.dumps(META)}).encode()
    headers = {"Authorization": "Bearer xoxb-sandbox-token"}
    req = urllib.request.Request(f"{sandbox.api_url}chat.postMessage", data=form, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["ok"] is True
    query = urllib.parse.urlencode({"channel": CH, "include_all_metadata": "true"})
    req = urllib.request.Request(f"{sandbox.api_url}conversations.history?{query}", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["messages"][0]["metadata"] == META
