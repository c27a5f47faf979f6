"""Checks on Block Kit payloads, so a block the real Slack would refuse is refused here too."""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_TEXT_CHARS = 40_000
_TEXT_LIMITS = {"header": 150, "section": 3000}
_KNOWN_BLOCKS = {
    "header",
    "section",
    "context",
    "divider",
    "actions",
    "image",
    "input",
    "rich_text",
    "file",
    "video",
    "markdown",
}


class BlockError(ValueError):
    """Blocks Slack would refuse; `code` is the Web API error, `messages` the details."""

    def __init__(self, code: str, messages: list[str]) -> None:
        super().__init__(code)
        self.code = code
        self.messages = messages


def parse_json_arg(value: Any) -> Any:
    """Form-encoded calls carry blocks and views as JSON strings; JSON calls carry them as objects."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as exc:
            raise BlockError("invalid_blocks_format", [f"not JSON: {exc}"]) from exc
    return value


def check_blocks(blocks: Any, limit: int = MAX_MESSAGE_BLOCKS) -> list[dict[str, Any]]:
    """Return the blocks if Slack would accept them, else raise BlockError."""
    blocks = parse_json_arg(blocks)
    if not isinstance(blocks, list):
        raise BlockError("invalid_blocks_format", ["blocks must be an array"])
    problems: list[str] = []
    if len(blocks) > limit:
        problems.append(f"no more than {limit} items allowed [json-pointer:/blocks]")
    seen_ids: set[str] = set()
    for i, block in enumerate(blocks):
        problems.extend(_check_block(block, f"/blocks/{i}", seen_ids))
    if problems:
        raise BlockError("invalid_blocks", problems)
    return blocks


def _check_block(block: Any, where: str, seen_ids: set[str]) -> list[str]:
    """Problems with one block."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        return [f"must be an object with a type [json-pointer:{where}]"]
    kind = block["type"]
    if kind not in _KNOWN_BLOCKS:
        return [f"unknown block type {kind!r} [json-pointer:{where}/type]"]
    problems = _check_block_id(block, where, seen_ids)
    if kind in _TEXT_LIMITS:
        problems += _check_text(block.get("text"), _TEXT_LIMITS[kind], f"{where}/text", kind == "section")
    if kind == "section":
        problems += _check_section(block, where)
    elif kind == "actions":
        problems += _check_elements(block, where, 25)
    elif kind == "context":
        problems += _check_elements(block, where, 10)
    return problems


def _check_block_id(block: dict[str, Any], where: str, seen_ids: set[str]) -> list[str]:
    """Block ids are optional, at most 255 characters, and unique within one message or view."""
    block_id = block.get("block_id")
    if block_id is None:
        return []
    if not isinstance(block_id, str) or len(block_id) > 255:
        return [f"block_id must be a string of at most 255 characters [json-pointer:{where}/block_id]"]
    if block_id in seen_ids:
        return [f"duplicate block_id {block_id!r} [json-pointer:{where}/block_id]"]
    seen_ids.add(block_id)
    return []


def _check_text(text: Any, limit: int, where: str, optional: bool) -> list[str]:
    """A text object with a non-empty string of at most `limit` characters."""
    if text is None and optional:
        return []
    if not isinstance(text, dict) or not isinstance(text.get("text"), str):
        return [f"must provide a text object [json-pointer:{where}]"]
    if text.get("type") not in ("plain_text", "mrkdwn"):
        return [f"text type must be plain_text or mrkdwn [json-pointer:{where}/type]"]
    if not text["text"]:
        return [f"must be more than 0 characters [json-pointer:{where}/text]"]
    if len(text["text"]) > limit:
        return [f"must be less than {limit + 1} characters [json-pointer:{where}/text]"]
    return []


def _check_section(block: dict[str, Any], where: str) -> list[str]:
    """A section needs text or fields; fields are at most 10 of at most 2000 characters."""
    fields = block.get("fields")
    if block.get("text") is None and not fields:
        return [f"must provide either text or fields [json-pointer:{where}]"]
    problems: list[str] = []
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            problems.append(f"fields must be at most 10 text objects [json-pointer:{where}/fields]")
        else:
            for i, f in enumerate(fields):
                problems += _check_text(f, 2000, f"{where}/fields/{i}", False)
    if block.get("accessory") is not None:
        problems += _check_element(block["accessory"], f"{where}/accessory")
    return problems


def _check_elements(block: dict[str, Any], where: str, limit: int) -> list[str]:
    """An actions or context block: a non-empty list of at most `limit` elements."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"must provide elements [json-pointer:{where}/elements]"]
    if len(elements) > limit:
        return [f"no more than {limit} items allowed [json-pointer:{where}/elements]"]
    problems: list[str] = []
    for i, element in enumerate(elements):
        if block["type"] == "actions":
            problems += _check_element(element, f"{where}/elements/{i}")
        elif not isinstance(element, dict) or "type" not in element:
            problems.append(f"must be an object with a type [json-pointer:{where}/elements/{i}]")
    return problems


def _check_element(element: Any, where: str) -> list[str]:
    """An interactive element; buttons get Slack's limits checked."""
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        return [f"must be an object with a type [json-pointer:{where}]"]
    problems: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        problems.append(f"action_id must be at most 255 characters [json-pointer:{where}/action_id]")
    if element["type"] != "button":
        return problems
    problems += _check_text(element.get("text"), 75, f"{where}/text", False)
    if len(str(element.get("value", ""))) > 2000:
        problems.append(f"value must be less than 2001 characters [json-pointer:{where}/value]")
    if element.get("style") not in (None, "primary", "danger"):
        problems.append(f"style must be primary or danger [json-pointer:{where}/style]")
    if element.get("confirm") is not None:
        problems += _check_confirm(element["confirm"], f"{where}/confirm")
    return problems


def _check_confirm(confirm: Any, where: str) -> list[str]:
    """A confirm dialog: title 100, text 300, confirm/deny 30 characters."""
    if not isinstance(confirm, dict):
        return [f"must be an object [json-pointer:{where}]"]
    problems = _check_text(confirm.get("title"), 100, f"{where}/title", False)
    problems += _check_text(confirm.get("text"), 300, f"{where}/text", False)
    for key in ("confirm", "deny"):
        problems += _check_text(confirm.get(key), 30, f"{where}/{key}", False)
    return problems


def check_view(view: Any, kinds: tuple[str, ...]) -> dict[str, Any]:
    """Return the view if Slack would accept it for this method, else raise BlockError."""
    view = parse_json_arg(view)
    if not isinstance(view, dict):
        raise BlockError("invalid_arguments", ["view must be an object"])
    if view.get("type") not in kinds:
        raise BlockError("invalid_arguments", [f"view type must be one of {list(kinds)} [json-pointer:/view/type]"])
    problems: list[str] = []
    if view["type"] == "modal":
        problems += _check_text(view.get("title"), 24, "/view/title", False)
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("private_metadata must be at most 3000 characters [json-pointer:/view/private_metadata]")
    if problems:
        raise BlockError("invalid_arguments", problems)
    try:
        check_blocks(view.get("blocks", []), MAX_VIEW_BLOCKS)
    except BlockError as exc:
        raise BlockError("invalid_arguments", exc.messages) from exc
    return view
