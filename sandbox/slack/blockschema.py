"""Slack's Block Kit rules as data: every object's properties, what is required, limits and plain_text-only places.

The numbers and rules are Slack's published ones (docs.slack.dev/reference/block-kit; the sources are in
docs/SLACK_BEHAVIOUR.md). Objects are closed, as in Slack's JSON schema (`additionalProperties: false`): a property
not listed here is refused, the way Slack refuses `emoji` on a mrkdwn text object. Where Slack's current reference
says `plain_text`, mrkdwn is refused, even where the older pages said "a text object" (the confirm dialog's text).
Problems read like Slack's (`… [json-pointer:/blocks/3/text]`); the exact wording of those not seen in a real
answer is ours.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Check = Callable[[Any, str], list[str]]  # (value, JSON pointer) → problems
Rule = Callable[[Mapping[str, Any], str], list[str]]  # cross-property rules of one object


def at(where: str, problem: str) -> str:
    """A problem the way Slack words them: the text, then the JSON pointer of the value it is about."""
    return f"{problem} [json-pointer:{where or '/'}]"


def string(limit: int, minimum: int = 1, choices: Sequence[str] = ()) -> Check:
    """A string of `minimum`..`limit` characters (one of `choices` if given)."""

    def check(value: Any, where: str) -> list[str]:
        if not isinstance(value, str):
            return [at(where, f"expected: string, got: {_kind(value)}")]
        if choices and value not in choices:
            return [at(where, f"must be one of the following values: {', '.join(choices)}")]
        if len(value) < minimum:
            return [at(where, f"must be more than {minimum - 1} characters")]
        if len(value) > limit:
            return [at(where, f"must be less than {limit + 1} characters")]
        return []

    return check


def boolean(value: Any, where: str) -> list[str]:
    """true or false (a string "true" is refused, as Slack does)."""
    return [] if isinstance(value, bool) else [at(where, f"expected: boolean, got: {_kind(value)}")]


def integer(low: int, high: int) -> Check:
    """An integer in `low`..`high`."""

    def check(value: Any, where: str) -> list[str]:
        if isinstance(value, bool) or not isinstance(value, int):
            return [at(where, f"expected: integer, got: {_kind(value)}")]
        if not low <= value <= high:
            return [at(where, f"must be between {low} and {high}")]
        return []

    return check


def array(item: Check, limit: int, minimum: int = 1) -> Check:
    """A list of `minimum`..`limit` items, each checked by `item`."""

    def check(value: Any, where: str) -> list[str]:
        if not isinstance(value, list):
            return [at(where, f"expected: array, got: {_kind(value)}")]
        if len(value) < minimum:
            return [at(where, f"must provide at least {minimum} item{'s' if minimum > 1 else ''}")]
        if len(value) > limit:
            return [at(where, f"no more than {limit} items allowed")]
        return [p for i, v in enumerate(value) for p in item(v, f"{where}/{i}")]

    return check


def closed(props: Mapping[str, Check], required: Sequence[str] = (), rules: Sequence[Rule] = ()) -> Check:
    """An object with exactly these properties (others refused), the required ones present, then the rules."""

    def check(value: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [at(where, f"expected: object, got: {_kind(value)}")]
        problems = [at(where, f"invalid additional property: {k}") for k in value if k not in props]
        problems += [at(where, f"missing required field: {k}") for k in required if value.get(k) is None]
        for key, sub in props.items():
            if value.get(key) is not None:
                problems += sub(value[key], f"{where}/{key}")
        for rule in rules:
            problems += rule(value, where)
        return problems

    return check


def typed(table: Mapping[str, Check], allowed: Sequence[str], what: str) -> Check:
    """An object whose `type` picks its rules from `table`, restricted to the `allowed` types of this place."""

    def check(value: Any, where: str) -> list[str]:
        if not isinstance(value, dict):
            return [at(where, f"expected: object, got: {_kind(value)}")]
        kind = value.get("type")
        if not isinstance(kind, str):
            return [at(where, "missing required field: type")]
        if kind not in allowed or kind not in table:
            return [at(f"{where}/type", f"{kind!r} is not a valid {what} here; expected one of: {', '.join(allowed)}")]
        return table[kind](value, where)

    return check


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


# Text objects ------------------------------------------------------------------------------------------------------
_TEXT_OBJECTS: dict[str, Check] = {}


def text(limit: int, *, plain_only: bool = False) -> Check:
    """A text object of 1..`limit` characters; `plain_only` where Slack takes plain_text alone."""
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")

    def check(value: Any, where: str) -> list[str]:
        if isinstance(value, dict) and value.get("type") in _TEXT_OBJECTS and value["type"] not in allowed:
            return [at(where, "failed to match all allowed schemas"), at(f"{where}/type", "must be plain_text here")]
        shape = typed(_TEXT_OBJECTS, allowed, "text object")(value, where)
        if shape:
            return [at(where, "failed to match all allowed schemas"), *shape]
        length = value["text"]
        return [at(f"{where}/text", f"must be less than {limit + 1} characters")] if len(length) > limit else []

    return check


_TEXT_OBJECTS["plain_text"] = closed(
    {"type": string(10), "text": string(40_000), "emoji": boolean}, required=("type", "text")
)
_TEXT_OBJECTS["mrkdwn"] = closed(
    {"type": string(10), "text": string(40_000), "verbatim": boolean}, required=("type", "text")
)
