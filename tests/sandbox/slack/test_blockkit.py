"""The stand-in's Block Kit checker, row by row against Slack's published rules; and its answers over HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.slack import workspace as ws
from sandbox.slack.blockkit import BlockError, check_blocks, check_view
from sandbox.slack.server import SlackSandboxHandle


def pt(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, **extra}


def md(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, **extra}


def button(**kw: Any) -> dict[str, Any]:
    return {"type": "button", "action_id": "go", "text": pt("Go"), **kw}


def confirm(**kw: Any) -> dict[str, Any]:
    return {"title": pt("Sure?"), "text": pt("Really?"), "confirm": pt("Yes"), "deny": pt("No"), **kw}


def option(text: str = "a", value: str = "a", **kw: Any) -> dict[str, Any]:
    return {"text": pt(text), "value": value, **kw}


def select(**kw: Any) -> dict[str, Any]:
    return {"type": "static_select", "action_id": "pick", "options": [option()], **kw}


def text_input(**kw: Any) -> dict[str, Any]:
    return {"type": "plain_text_input", "action_id": "in", **kw}


def section(text: str = "hi", **kw: Any) -> dict[str, Any]:
    return {"type": "section", "text": md(text), **kw}


def actions(*elements: dict[str, Any]) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements)}


def input_block(element: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "input", "block_id": "b", "label": pt("Label"), "element": element, **kw}


def modal(*blocks: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "modal", "title": pt("Deploy"), "submit": pt("Deploy"), "blocks": list(blocks), **kw}


IMAGE = {"type": "image", "image_url": "https://x.example/i.png", "alt_text": "i"}
# Messages Slack takes as they are (the checker must not refuse what Slack accepts).
ACCEPTED: list[tuple[str, list[dict[str, Any]]]] = [
    ("section with mrkdwn and verbatim", [section(), {"type": "section", "text": md("x", verbatim=True)}]),
    ("section with plain_text and emoji", [{"type": "section", "text": pt("x", emoji=True)}]),
    ("fields only, ten of 2000", [{"type": "section", "fields": [md("f" * 2000)] * 10}]),
    ("section text of exactly 3000", [section("x" * 3000)]),
    ("header of 150", [{"type": "header", "text": pt("h" * 150)}]),
    ("divider with block_id", [{"type": "divider", "block_id": "d" * 255}]),
    ("context of ten", [{"type": "context", "elements": [md("c")] * 5 + [pt("p")] * 4 + [IMAGE]}]),
    ("actions of 25 buttons", [actions(*[button(action_id=f"b{i}") for i in range(25)])]),
    (
        "button at its limits",
        [actions(button(text=pt("b" * 75), value="v" * 2000, url="https://x.example/" + "p" * 2900))],
    ),
    ("button with a full confirm", [actions(button(style="danger", confirm=confirm(style="danger")))]),
    ("accessory select, 100 options", [section(accessory=select(options=[option(value=f"{i}") for i in range(100)]))]),
    (
        "overflow of 5 with urls",
        [section(accessory={"type": "overflow", "options": [option(url="https://x.example")] * 5})],
    ),
    (
        "checkbox options may use mrkdwn",
        [section(accessory={"type": "checkboxes", "options": [{"text": md("*a*"), "value": "a"}]})],
    ),
    ("fifty blocks", [section()] * 50),
    ("no blocks at all", []),
]


@pytest.mark.parametrize(("name", "blocks"), ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_what_slack_accepts_passes(name: str, blocks: list[dict[str, Any]]) -> None:
    assert check_blocks(blocks) == blocks


# (what is wrong, blocks, one problem Slack would name)
REFUSED: list[tuple[str, list[Any], str]] = [
    # Unknown properties: Slack's schema is closed (slack-go/slack#1414).
    (
        "emoji on mrkdwn",
        [section(), section(), section(), {"type": "section", "text": md("x", emoji=True)}],
        "invalid additional property: emoji [json-pointer:/blocks/3/text]",
    ),
    ("unknown block property", [section(colour="red")], "invalid additional property: colour [json-pointer:/blocks/0]"),
    (
        "unknown button property",
        [actions(button(emoji=True))],
        "invalid additional property: emoji [json-pointer:/blocks/0/elements/0]",
    ),
    (
        "unknown confirm property",
        [actions(button(confirm=confirm(colour="red")))],
        "invalid additional property: colour [json-pointer:/blocks/0/elements/0/confirm]",
    ),
    ("unknown block type", [{"type": "table"}], "'table' is not a valid block type here"),
    ("input block in a message", [input_block(text_input())], "'input' is not a valid block type here"),
    ("rich_text is not modelled", [{"type": "rich_text", "elements": []}], "'rich_text' is not a valid block type"),
    # plain_text only.
    (
        "mrkdwn header",
        [{"type": "header", "text": md("*h*")}],
        "must be plain_text here [json-pointer:/blocks/0/text/type]",
    ),
    (
        "mrkdwn button text",
        [actions(button(text=md("Go")))],
        "must be plain_text here [json-pointer:/blocks/0/elements/0/text/type]",
    ),
    (
        "mrkdwn confirm text",
        [actions(button(confirm=confirm(text=md("*sure*"))))],
        "must be plain_text here [json-pointer:/blocks/0/elements/0/confirm/text/type]",
    ),
    (
        "mrkdwn confirm title",
        [actions(button(confirm=confirm(title=md("t"))))],
        "must be plain_text here [json-pointer:/blocks/0/elements/0/confirm/title/type]",
    ),
    (
        "mrkdwn select option",
        [section(accessory=select(options=[{"text": md("a"), "value": "a"}]))],
        "must be plain_text here [json-pointer:/blocks/0/accessory/options/0/text/type]",
    ),
    (
        "mrkdwn placeholder",
        [section(accessory=select(placeholder=md("p")))],
        "must be plain_text here [json-pointer:/blocks/0/accessory/placeholder/type]",
    ),
    (
        "mrkdwn image title",
        [{**IMAGE, "title": md("t")}],
        "must be plain_text here [json-pointer:/blocks/0/title/type]",
    ),
    # Lengths.
    (
        "section text 3001",
        [section("x" * 3001)],
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]",
    ),
    (
        "field 2001",
        [{"type": "section", "fields": [md("f" * 2001)]}],
        "must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]",
    ),
    ("header 151", [{"type": "header", "text": pt("h" * 151)}], "must be less than 151 characters"),
    ("empty text", [section("")], "must be more than 0 characters [json-pointer:/blocks/0/text/text]"),
    ("button text 76", [actions(button(text=pt("b" * 76)))], "must be less than 76 characters"),
    ("button value 2001", [actions(button(value="v" * 2001))], "[json-pointer:/blocks/0/elements/0/value]"),
    ("block_id 256", [{"type": "divider", "block_id": "d" * 256}], "[json-pointer:/blocks/0/block_id]"),
    ("action_id 256", [actions(button(action_id="a" * 256))], "[json-pointer:/blocks/0/elements/0/action_id]"),
    ("confirm text 301", [actions(button(confirm=confirm(text=pt("t" * 301))))], "must be less than 301 characters"),
    ("confirm deny 31", [actions(button(confirm=confirm(deny=pt("n" * 31))))], "must be less than 31 characters"),
    ("option value 151", [section(accessory=select(options=[option(value="v" * 151)]))], "must be less than 151"),
    ("option text 76", [section(accessory=select(options=[option(text="t" * 76)]))], "must be less than 76"),
    # Counts.
    ("51 blocks", [section()] * 51, "no more than 50 items allowed [json-pointer:/blocks]"),
    ("11 fields", [{"type": "section", "fields": [md("f")] * 11}], "no more than 10 items allowed"),
    ("11 context elements", [{"type": "context", "elements": [md("c")] * 11}], "no more than 10 items allowed"),
    ("26 actions", [actions(*[button(action_id=f"b{i}") for i in range(26)])], "no more than 25 items allowed"),
    (
        "101 options",
        [section(accessory=select(options=[option(value=f"{i}") for i in range(101)]))],
        "no more than 100 items allowed",
    ),
    ("6 overflow options", [section(accessory={"type": "overflow", "options": [option()] * 6})], "no more than 5"),
    ("empty actions", [actions()], "must provide at least 1 item"),
    # Required fields, kinds and values.
    ("section without text or fields", [{"type": "section"}], "must provide either text or fields"),
    ("header without text", [{"type": "header"}], "missing required field: text [json-pointer:/blocks/0]"),
    ("button without text", [actions({"type": "button", "action_id": "a"})], "missing required field: text"),
    (
        "confirm without deny",
        [actions(button(confirm={k: v for k, v in confirm().items() if k != "deny"}))],
        "missing required field: deny",
    ),
    (
        "image without alt_text",
        [{"type": "image", "image_url": "https://x.example/i.png"}],
        "missing required field: alt_text",
    ),
    ("button style green", [actions(button(style="green"))], "must be one of the following values: primary, danger"),
    ("string where a bool goes", [{"type": "section", "text": md("x", verbatim="true")}], "expected: boolean"),
    (
        "select with options and groups",
        [section(accessory=select(option_groups=[{"label": pt("g"), "options": [option()]}]))],
        "must provide exactly one of options or option_groups",
    ),
    (
        "input element as accessory",
        [section(accessory=text_input())],
        "'plain_text_input' is not a valid section accessory",
    ),
    ("duplicate block_id", [section(block_id="x"), section(block_id="x")], "duplicate block_id 'x'"),
    ("duplicate action_id", [actions(button(), button())], "duplicate action_id 'go'"),
    ("block not an object", ["section"], "expected: object, got: string [json-pointer:/blocks/0]"),
]


@pytest.mark.parametrize(("name", "blocks", "problem"), REFUSED, ids=[c[0] for c in REFUSED])
def test_what_slack_refuses_is_refused_with_its_reason(name: str, blocks: list[Any], problem: str) -> None:
    with pytest.raises(BlockError) as refused:
        check_blocks(blocks)
    assert refused.value.code == "invalid_blocks"
    assert any(problem in m for m in refused.value.messages), refused.value.messages


# (what is wrong, view, one problem Slack would name)
VIEWS: list[tuple[str, dict[str, Any], str | None]] = [
    ("a good modal", modal(input_block(text_input(max_length=3000)), close=pt("Cancel")), None),
    ("a good Home tab", {"type": "home", "blocks": [section()] * 100}, None),
    (
        "modal title mrkdwn",
        modal(section(), title=md("*Deploy*")),
        "must be plain_text here [json-pointer:/view/title/type]",
    ),
    (
        "modal title 25",
        modal(section(), title=pt("t" * 25)),
        "must be less than 25 characters [json-pointer:/view/title/text]",
    ),
    ("modal submit mrkdwn", modal(section(), submit=md("Go")), "[json-pointer:/view/submit/type]"),
    ("modal close mrkdwn", modal(section(), close=md("No")), "[json-pointer:/view/close/type]"),
    (
        "modal without title",
        {"type": "modal", "blocks": [section()]},
        "missing required field: title [json-pointer:/view]",
    ),
    (
        "inputs need a submit",
        {"type": "modal", "title": pt("t"), "blocks": [input_block(text_input())]},
        "missing required field: submit [json-pointer:/view]",
    ),
    (
        "input label mrkdwn",
        modal(input_block(text_input(), label=md("*L*"))),
        "[json-pointer:/view/blocks/0/label/type]",
    ),
    ("input hint mrkdwn", modal(input_block(text_input(), hint=md("h"))), "[json-pointer:/view/blocks/0/hint/type]"),
    ("label 2001", modal(input_block(text_input(), label=pt("l" * 2001))), "must be less than 2001 characters"),
    (
        "max_length 3001",
        modal(input_block(text_input(max_length=3001))),
        "must be between 1 and 3000 [json-pointer:/view/blocks/0/element/max_length]",
    ),
    (
        "min above max",
        modal(input_block(text_input(min_length=10, max_length=5))),
        "must not be greater than max_length",
    ),
    ("button as an input element", modal(input_block(button())), "'button' is not a valid input element here"),
    (
        "101 blocks",
        {"type": "home", "blocks": [section()] * 101},
        "no more than 100 items allowed [json-pointer:/view/blocks]",
    ),
    ("private_metadata 3001", modal(section(), private_metadata="m" * 3001), "[json-pointer:/view/private_metadata]"),
    (
        "unknown view property",
        modal(section(), colour="red"),
        "invalid additional property: colour [json-pointer:/view]",
    ),
    ("home in a modal method", {"type": "home", "blocks": [section()]}, "'home' is not a valid view type here"),
]


@pytest.mark.parametrize(("name", "view", "problem"), VIEWS, ids=[c[0] for c in VIEWS])
def test_views(name: str, view: dict[str, Any], problem: str | None) -> None:
    kinds = (view["type"],) if name != "home in a modal method" else ("modal",)
    if problem is None:
        assert check_view(view, kinds) == view
        return
    with pytest.raises(BlockError) as refused:
        check_view(view, kinds)
    assert refused.value.code == "invalid_arguments"
    assert any(problem in m for m in refused.value.messages), refused.value.messages


def test_invalid_blocks_over_http_read_like_slack(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    """Slack's own answer for `emoji` on mrkdwn (slack-go/slack#1414), nothing stored."""
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(
            channel=ws.DEPLOYS_CHANNEL, text="t", blocks=[{"type": "section", "text": md("x", emoji=True)}]
        )
    body = refused.value.response.data
    assert isinstance(body, dict) and body["error"] == "invalid_blocks"
    assert body["response_metadata"]["messages"] == [
        "[ERROR] failed to match all allowed schemas [json-pointer:/blocks/0/text]",
        "[ERROR] invalid additional property: emoji [json-pointer:/blocks/0/text]",
    ]
    assert body["errors"] == [m.removeprefix("[ERROR] ") for m in body["response_metadata"]["messages"]]
    assert not sandbox.store.snapshot()["channels"].get(ws.DEPLOYS_CHANNEL)


def test_invalid_view_over_http(client: WebClient, sandbox: SlackSandboxHandle) -> None:
    trigger = sandbox.store.issue_trigger(ws.ALICE)
    with pytest.raises(SlackApiError) as refused:
        client.views_open(trigger_id=trigger, view=modal(section(), title=md("*Deploy*")))
    body = refused.value.response.data
    assert isinstance(body, dict) and body["error"] == "invalid_arguments"
    assert "[ERROR] must be plain_text here [json-pointer:/view/title/type]" in body["response_metadata"]["messages"]
