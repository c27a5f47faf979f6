"""Shared pieces of the Block Kit builders: the Message type, text objects, mentions, dates, size limits (pure)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.domain.text import clip, escape

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_MESSAGE_CHARS = 12_000  # Slack may refuse messages near 13 k characters even when each limit holds
SECTION_CHARS = 3000
FIELD_CHARS = 2000
HEADER_CHARS = 150
CONTEXT_ELEMENTS = 10
TEXT_CHARS = 3000  # top-level `text`: far below Slack's 40 k, plenty for a notification
USER_ID = re.compile(r"^[UWB][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")


@dataclass(frozen=True)
class Message:
    """A Slack message: the notification / screen-reader `text` and the Block Kit `blocks` (as dicts)."""

    text: str
    blocks: list[dict[str, Any]]

    def as_kwargs(self) -> dict[str, Any]:
        """`text` and `blocks`, ready for chat.postMessage / chat.update / chat.postEphemeral (always both)."""
        return {"text": self.text, "blocks": self.blocks}


def plain(text: str, limit: int = SECTION_CHARS) -> PlainTextObject:
    """A plain_text object (emoji on), clipped to `limit`."""
    return PlainTextObject(text=clip(text, limit) or " ", emoji=True)


def md(text: str, limit: int = SECTION_CHARS) -> MarkdownTextObject:
    """A mrkdwn object, clipped to `limit`."""
    return MarkdownTextObject(text=clip(text, limit) or " ")


def section(text: str) -> SectionBlock:
    """A mrkdwn section, clipped to Slack's 3000 characters."""
    return SectionBlock(text=md(text, SECTION_CHARS))


def context(*texts: str) -> ContextBlock:
    """A context block of mrkdwn elements (at most 10; the rest are joined into the last one)."""
    items = [t for t in texts if t]
    if len(items) > CONTEXT_ELEMENTS:
        items = [*items[: CONTEXT_ELEMENTS - 1], " · ".join(items[CONTEXT_ELEMENTS - 1 :])]
    return ContextBlock(elements=[md(t) for t in items or [" "]])


def user(user_id: str | None) -> str:
    """A mention of a Slack user id, or the escaped text when it is not an id."""
    if not user_id:
        return "someone"
    return f"<@{user_id}>" if USER_ID.match(user_id) else escape(user_id)


def principal(value: str) -> str:
    """A mention of a user (U…/W…) or a user group (S…), as the catalog names approvers."""
    return f"<!subteam^{value}>" if GROUP_ID.match(value) else user(value)


def principals(values: Sequence[str]) -> str:
    """Mentions of several users / groups, space-separated."""
    return " ".join(principal(v) for v in values)


def as_utc(value: datetime) -> datetime:
    """An aware datetime in UTC (naive values are taken as UTC, as the database stores them)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def slack_date(value: datetime, fmt: str = "{date_short_pretty} {time}") -> str:
    """Slack date formatting: every reader sees their own time zone; the fallback is UTC."""
    moment = as_utc(value)
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(moment.timestamp())}^{fmt}|{fallback}>"


def pct(value: float | None) -> str:
    """A percentage the way messages show it: `10 %`, `0.5 %`, `99.9 %`."""
    return f"{round(value or 0.0, 1):g} %"


def finish(text: str, blocks: Sequence[Block], *, limit: int = MAX_MESSAGE_BLOCKS) -> Message:
    """Validate every block (`to_dict` checks Slack's limits) and keep the message within Slack's size limits."""
    dicts = [b.to_dict() for b in blocks]
    dicts = fit_blocks(dicts, limit, MAX_MESSAGE_CHARS)
    return Message(text=clip(text.strip() or "DeployBot", TEXT_CHARS), blocks=dicts)


def plain_fallback(message: Message) -> Message:
    """The message as its text alone, for when Slack refuses its blocks.

    One section replaces the blocks (a chat.update with no blocks would leave the old ones, buttons and all).
    """
    text = clip(message.text.strip() or "DeployBot", TEXT_CHARS)
    return Message(text=text, blocks=[section(text).to_dict()])


def fit_blocks(dicts: list[dict[str, Any]], limit: int, max_chars: int) -> list[dict[str, Any]]:
    """Drop trailing blocks (replaced by one "…and N more" context) until both limits hold."""
    if len(dicts) <= limit and _size(dicts) <= max_chars:
        return dicts
    for keep in range(min(len(dicts), limit) - 1, -1, -1):
        fitted = [*dicts[:keep], context(f"…and {len(dicts) - keep} more").to_dict()]
        if _size(fitted) <= max_chars:
            return fitted
    return []


def _size(dicts: list[dict[str, Any]]) -> int:
    return len(json.dumps(dicts, ensure_ascii=False))
