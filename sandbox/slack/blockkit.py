"""Checks on Block Kit payloads, so a block the real Slack would refuse is refused here too.

Slack's published limits and element rules (docs.slack.dev/reference/block-kit; docs/SLACK_BEHAVIOUR.md has the
sources), stricter than slack_sdk's models, which let mrkdwn into headers and buttons, do not count a message's
blocks, and drop unknown properties instead of refusing them. Messages refuse with `invalid_blocks`, views with
`invalid_arguments`, each problem as Slack words them (`invalid additional property: emoji
[json-pointer:/blocks/3/text]`). The block types the bot never sends (rich_text, file, video, markdown's siblings)
are refused rather than half-checked: the stand-in may be stricter than Slack, never looser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sandbox.slack.blockschema import (
    Check,
    array,
    at,
    boolean,
    closed,
    integer,
    string,
    text,
    typed,
)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000
STYLES = ("primary", "danger")


class BlockError(ValueError):
    """Blocks Slack would refuse; `code` is the Web API error, `messages` the details."""

    def __init__(self, code: str, messages: list[str]) -> None:
        super().__init__("; ".join([code, *messages]))
        self.code = code
        self.messages = messages


# Composition objects -----------------------------------------------------------------------------------------------
CONFIRM = closed(
    {
        "title": text(100, plain_only=True),
        "text": text(300, plain_only=True),  # "A plain_text text object" in the current reference
        "confirm": text(30, plain_only=True),
        "deny": text(30, plain_only=True),
        "style": string(7, choices=STYLES),
    },
    required=("title", "text", "confirm", "deny"),
)


def _option(*, plain_only: bool, url: bool = False) -> Check:
    """Menus take plain_text options; radio buttons and checkboxes may use mrkdwn; only overflow links."""
    props: dict[str, Check] = {
        "text": text(75, plain_only=plain_only),
        "value": string(150),
        "description": text(75, plain_only=plain_only),
    }
    if url:
        props["url"] = string(3000)
    return closed(props, required=("text", "value"))


OPTION = _option(plain_only=True)
OVERFLOW_OPTION = _option(plain_only=True, url=True)
CHOICE = _option(plain_only=False)
OPTION_GROUP = closed({"label": text(75, plain_only=True), "options": array(OPTION, 100)}, ("label", "options"))
PLACEHOLDER = text(150, plain_only=True)
SLACK_FILE = closed({"url": string(3000), "id": string(255)})
DISPATCH = closed({"trigger_actions_on": array(string(20, choices=("on_enter_pressed", "on_character_entered")), 2)})
FILTER = closed(
    {
        "include": array(string(10, choices=("im", "mpim", "private", "public")), 4),
        "exclude_external_shared_channels": boolean,
        "exclude_bot_users": boolean,
    }
)


# Cross-property rules ----------------------------------------------------------------------------------------------
def _options_or_groups(value: Mapping[str, Any], where: str) -> list[str]:
    if (value.get("options") is None) == (value.get("option_groups") is None):
        return [at(where, "must provide exactly one of options or option_groups")]
    return []


def _url_or_file(value: Mapping[str, Any], where: str) -> list[str]:
    if (value.get("image_url") is None) == (value.get("slack_file") is None):
        return [at(where, "must provide exactly one of image_url or slack_file")]
    return []


def _lengths_in_order(value: Mapping[str, Any], where: str) -> list[str]:
    low, high = value.get("min_length"), value.get("max_length")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        return [at(f"{where}/min_length", "must not be greater than max_length")]
    return []


def _text_or_fields(value: Mapping[str, Any], where: str) -> list[str]:
    if value.get("text") is None and value.get("fields") is None:
        return [at(where, "must provide either text or fields")]
    return []


def _unique_action_ids(value: Mapping[str, Any], where: str) -> list[str]:
    seen: set[str] = set()
    problems = []
    for i, element in enumerate(value.get("elements") or []):
        action_id = element.get("action_id") if isinstance(element, dict) else None
        if isinstance(action_id, str) and action_id in seen:
            problems.append(at(f"{where}/elements/{i}/action_id", f"duplicate action_id {action_id!r}"))
        if isinstance(action_id, str):
            seen.add(action_id)
    return problems


# Elements ----------------------------------------------------------------------------------------------------------
def _element(props: Mapping[str, Check], required: tuple[str, ...] = (), rules: tuple[Any, ...] = ()) -> Check:
    return closed({"type": string(40), "action_id": string(255), **props}, ("type", *required), rules)


_SELECT = {"placeholder": PLACEHOLDER, "confirm": CONFIRM, "focus_on_load": boolean}
ELEMENTS: dict[str, Check] = {
    "button": _element(
        {
            "text": text(75, plain_only=True),
            "url": string(3000),
            "value": string(2000),
            "style": string(7, choices=STYLES),
            "confirm": CONFIRM,
            "accessibility_label": string(75),
        },
        ("text",),
    ),
    "static_select": _element(
        {**_SELECT, "options": array(OPTION, 100), "option_groups": array(OPTION_GROUP, 100), "initial_option": OPTION},
        rules=(_options_or_groups,),
    ),
    "multi_static_select": _element(
        {
            **_SELECT,
            "options": array(OPTION, 100),
            "option_groups": array(OPTION_GROUP, 100),
            "initial_options": array(OPTION, 100),
            "max_selected_items": integer(1, 100),
        },
        rules=(_options_or_groups,),
    ),
    "external_select": _element({**_SELECT, "initial_option": OPTION, "min_query_length": integer(0, 100)}),
    "users_select": _element({**_SELECT, "initial_user": string(255)}),
    "conversations_select": _element(
        {
            **_SELECT,
            "initial_conversation": string(255),
            "default_to_current_conversation": boolean,
            "response_url_enabled": boolean,
            "filter": FILTER,
        }
    ),
    "channels_select": _element({**_SELECT, "initial_channel": string(255), "response_url_enabled": boolean}),
    "overflow": _element({"options": array(OVERFLOW_OPTION, 5), "confirm": CONFIRM}, ("options",)),
    "datepicker": _element({**_SELECT, "initial_date": string(10, 10)}),
    "timepicker": _element({**_SELECT, "initial_time": string(5, 5), "timezone": string(64)}),
    "checkboxes": _element(
        {
            "options": array(CHOICE, 10),
            "initial_options": array(CHOICE, 10),
            "confirm": CONFIRM,
            "focus_on_load": boolean,
        },
        ("options",),
    ),
    "radio_buttons": _element(
        {"options": array(CHOICE, 10), "initial_option": CHOICE, "confirm": CONFIRM, "focus_on_load": boolean},
        ("options",),
    ),
    "plain_text_input": _element(
        {
            "placeholder": PLACEHOLDER,
            "initial_value": string(3000, minimum=0),
            "multiline": boolean,
            "min_length": integer(0, 3000),
            "max_length": integer(1, 3000),
            "dispatch_action_config": DISPATCH,
            "focus_on_load": boolean,
        },
        rules=(_lengths_in_order,),
    ),
    # The image element is not interactive: no action_id.
    "image": closed(
        {"type": string(40), "image_url": string(3000), "alt_text": string(2000), "slack_file": SLACK_FILE},
        ("type", "alt_text"),
        (_url_or_file,),
    ),
}
_MENUS = ("static_select", "multi_static_select", "external_select", "users_select", "conversations_select")
_PICKERS = ("channels_select", "datepicker", "timepicker", "checkboxes", "radio_buttons")
ACTION_ELEMENTS = ("button", *_MENUS, *_PICKERS, "overflow")
ACCESSORIES = ("button", "image", *_MENUS, *_PICKERS, "overflow")
INPUT_ELEMENTS = ("plain_text_input", *_MENUS, *_PICKERS)
CONTEXT_ELEMENTS: dict[str, Check] = {"image": ELEMENTS["image"], "plain_text": text(40_000), "mrkdwn": text(40_000)}


# Blocks ------------------------------------------------------------------------------------------------------------
def _block(props: Mapping[str, Check], required: tuple[str, ...] = (), rules: tuple[Any, ...] = ()) -> Check:
    return closed({"type": string(40), "block_id": string(255), **props}, ("type", *required), rules)


BLOCKS: dict[str, Check] = {
    "section": _block(
        {
            "text": text(3000),
            "fields": array(text(2000), 10),
            "accessory": typed(ELEMENTS, ACCESSORIES, "section accessory"),
            "expand": boolean,
        },
        rules=(_text_or_fields,),
    ),
    "header": _block({"text": text(150, plain_only=True)}, ("text",)),
    "divider": _block({}),
    "context": _block(
        {"elements": array(typed(CONTEXT_ELEMENTS, tuple(CONTEXT_ELEMENTS), "context element"), 10)}, ("elements",)
    ),
    "actions": _block(
        {"elements": array(typed(ELEMENTS, ACTION_ELEMENTS, "actions element"), 25)},
        ("elements",),
        (_unique_action_ids,),
    ),
    "image": _block(
        {
            "image_url": string(3000),
            "slack_file": SLACK_FILE,
            "alt_text": string(2000),
            "title": text(2000, plain_only=True),
        },
        ("alt_text",),
        (_url_or_file,),
    ),
    "input": _block(
        {
            "label": text(2000, plain_only=True),
            "element": typed(ELEMENTS, INPUT_ELEMENTS, "input element"),
            "dispatch_action": boolean,
            "hint": text(2000, plain_only=True),
            "optional": boolean,
        },
        ("label", "element"),
    ),
    "markdown": _block({"text": string(12_000)}, ("text",)),
}
MESSAGE_BLOCKS = ("section", "header", "divider", "context", "actions", "image", "markdown")
VIEW_BLOCKS = (*MESSAGE_BLOCKS, "input")


def parse_json_arg(value: Any) -> Any:
    """Form-encoded calls carry blocks and views as JSON strings; JSON calls carry them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise BlockError("invalid_blocks_format", [f"not JSON: {exc}"]) from exc
    return value


def block_problems(blocks: Any, where: str, limit: int, kinds: tuple[str, ...], minimum: int = 0) -> list[str]:
    """Everything Slack would say about a `blocks` array found at `where` (empty when it would take it)."""
    problems = array(typed(BLOCKS, kinds, "block type"), limit, minimum)(blocks, where)
    seen: set[str] = set()
    for i, block in enumerate(blocks if isinstance(blocks, list) else []):
        block_id = block.get("block_id") if isinstance(block, dict) else None
        if isinstance(block_id, str) and block_id in seen:
            problems.append(at(f"{where}/{i}/block_id", f"duplicate block_id {block_id!r}"))
        if isinstance(block_id, str):
            seen.add(block_id)
    return problems


def check_blocks(blocks: Any, limit: int = MAX_MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """Return a message's blocks if Slack would accept them, else raise BlockError (`invalid_blocks`)."""
    blocks = parse_json_arg(blocks)
    if not isinstance(blocks, list):
        raise BlockError("invalid_blocks_format", ["blocks must be an array"])
    problems = block_problems(blocks, "/blocks", limit, MESSAGE_BLOCKS)
    if problems:
        raise BlockError("invalid_blocks", problems)
    return blocks


def _submit_with_inputs(value: Mapping[str, Any], where: str) -> list[str]:
    blocks = value.get("blocks")
    has_input = isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
    return [at(where, "missing required field: submit")] if has_input and value.get("submit") is None else []


_VIEW_COMMON: dict[str, Check] = {
    "type": string(10),
    "blocks": lambda blocks, where: block_problems(blocks, where, MAX_VIEW_BLOCKS, VIEW_BLOCKS, minimum=1),
    "private_metadata": string(3000, minimum=0),
    "callback_id": string(255, minimum=0),
    "external_id": string(255),
}
VIEWS: dict[str, Check] = {
    "modal": closed(
        {
            **_VIEW_COMMON,
            "title": text(24, plain_only=True),
            "close": text(24, plain_only=True),
            "submit": text(24, plain_only=True),
            "clear_on_close": boolean,
            "notify_on_close": boolean,
            "submit_disabled": boolean,
        },
        ("type", "title", "blocks"),
        (_submit_with_inputs,),
    ),
    "home": closed(_VIEW_COMMON, ("type", "blocks")),
}


def check_view(view: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Return the view if Slack would accept it for this method, else raise BlockError (`invalid_arguments`)."""
    view = parse_json_arg(view)
    if not isinstance(view, dict):
        raise BlockError("invalid_arguments", [at("/view", "expected: object")])
    problems = typed(VIEWS, kinds, "view type")(view, "/view")
    if problems:
        raise BlockError("invalid_arguments", problems)
    return view
