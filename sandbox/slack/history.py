"""Reading messages back: conversations.history / conversations.replies, and message metadata."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.slack import workspace as ws
from sandbox.slack.blockkit import BlockError
from sandbox.slack.state import Message, Store

Reply = tuple[int, dict[str, Any], dict[str, str]]
Params = dict[str, Any]

DEFAULT_LIMIT = 100
MAX_LIMIT = 999  # Slack caps a page at 999 and quietly clamps larger values
MAX_METADATA_CHARS = 8_000
_HIDDEN = ("channel", "is_ephemeral", "metadata")  # the stand-in's bookkeeping, and metadata unless asked for


class _Refused(Exception):
    """A request Slack answers with ok=false and this error code."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def message_metadata(params: Params) -> dict[str, Any] | None:
    """The `metadata` of a post (JSON object or JSON text); raises BlockError as Slack refuses bad ones."""
    raw = params.get("metadata")
    if raw in (None, ""):
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        raise BlockError("invalid_metadata_format", ["metadata is not valid JSON"]) from None
    if not isinstance(value, dict) or len(json.dumps(value)) > MAX_METADATA_CHARS:
        raise BlockError("invalid_metadata_format", ["metadata must be a JSON object under 8 KB"])
    event_type, payload = value.get("event_type"), value.get("event_payload")
    if not isinstance(event_type, str) or not event_type or not isinstance(payload, dict):
        raise BlockError("invalid_metadata_schema", ["metadata needs event_type (string) and event_payload (object)"])
    return {"event_type": event_type, "event_payload": payload}


def _ok(**fields: Any) -> Reply:
    return 200, {"ok": True, **fields}, {}


def _fail(error: str) -> Reply:
    return 200, {"ok": False, "error": error}, {}


def _flag(value: Any) -> bool:
    """A boolean argument as Slack reads it ("1", "true", or JSON true)."""
    return value is True or str(value).lower() in ("1", "true")


def _ts(value: Any, error: str, default: Decimal) -> Decimal:
    """A ts bound as a number (Decimal: floats lose the microseconds)."""
    if value in (None, ""):
        return default
    try:
        parsed = Decimal(str(value))
    except InvalidOperation:
        raise _Refused(error) from None
    if not parsed.is_finite():
        raise _Refused(error)
    return parsed


def _limit(value: Any) -> int:
    """The page size, clamped as Slack does."""
    if value in (None, ""):
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise _Refused("invalid_limit") from None
    return DEFAULT_LIMIT if limit <= 0 else min(limit, MAX_LIMIT)


def _cursor(value: Any) -> int:
    """The offset a `next_cursor` stands for."""
    if value in (None, ""):
        return 0
    try:
        text = base64.urlsafe_b64decode(str(value).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _Refused("invalid_cursor") from None
    kind, _, offset = text.partition(":")
    if kind != "next_ts" or not offset.isdigit():
        raise _Refused("invalid_cursor")
    return int(offset)


def _next_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"next_ts:{offset}".encode()).decode()


def _window(params: Params) -> Callable[[Message], bool]:
    """Whether a message falls between `oldest` and `latest` (exclusive unless `inclusive`)."""
    oldest = _ts(params.get("oldest"), "invalid_ts_oldest", Decimal(0))
    latest = _ts(params.get("latest"), "invalid_ts_latest", Decimal("Infinity"))
    if _flag(params.get("inclusive")):
        return lambda m: oldest <= Decimal(m["ts"]) <= latest
    return lambda m: oldest < Decimal(m["ts"]) < latest


def _shown(msg: Message, with_metadata: bool) -> Message:
    """A stored message as the read methods return it."""
    out = {k: v for k, v in msg.items() if k not in _HIDDEN}
    if with_metadata and msg.get("metadata"):
        out["metadata"] = msg["metadata"]
    return out


def _page(msgs: list[Message], params: Params, offset: int) -> tuple[list[Message], dict[str, Any]]:
    """One page of `msgs` from `offset`, with Slack's has_more / response_metadata."""
    limit = _limit(params.get("limit"))
    chunk = msgs[offset : offset + limit]
    more = offset + limit < len(msgs)
    with_metadata = _flag(params.get("include_all_metadata"))
    meta = {"next_cursor": _next_cursor(offset + limit) if more else ""}
    return [_shown(m, with_metadata) for m in chunk], {"has_more": more, "response_metadata": meta}


class History:
    """conversations.history and conversations.replies over the store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def methods(self) -> dict[str, Callable[[Params], Reply]]:
        """The Web API methods this module adds, by name."""
        return {"conversations.history": self.history, "conversations.replies": self.replies}

    def _channel(self, params: Params) -> ws.Channel:
        """The channel asked about, which the bot must be in."""
        channel = ws.ALL_CHANNELS.get(str(params.get("channel", "")))
        if channel is None or not channel.visible_to_bot:
            raise _Refused("channel_not_found")
        if ws.BOT_USER_ID not in channel.members:
            raise _Refused("not_in_channel")
        return channel

    def history(self, params: Params) -> Reply:
        """conversations.history: top-level messages, newest first."""
        try:
            channel = self._channel(params)
            inside, offset = _window(params), _cursor(params.get("cursor"))
            with self.store.lock:
                msgs = [
                    m
                    for m in self.store.channels.get(channel.id, [])
                    if m.get("thread_ts") in (None, m["ts"]) and inside(m)
                ]
                msgs.sort(key=lambda m: Decimal(m["ts"]), reverse=True)
                page, more = _page(msgs, params, offset)
        except _Refused as exc:
            return _fail(exc.error)
        return _ok(messages=page, **more, pin_count=0, channel_actions_ts=None, channel_actions_count=0)

    def replies(self, params: Params) -> Reply:
        """conversations.replies: the parent first, then its replies oldest first."""
        try:
            channel = self._channel(params)
            inside, offset = _window(params), _cursor(params.get("cursor"))
            ts = str(params.get("ts") or "")
            with self.store.lock:
                parent = self.store.find_message(channel.id, ts) if ts else None
                if parent is None:
                    raise _Refused("thread_not_found")
                if parent.get("thread_ts") not in (None, ts):
                    # Asked with a reply's ts, Slack answers with that reply alone.
                    return _ok(
                        messages=[_shown(parent, _flag(params.get("include_all_metadata")))],
                        has_more=False,
                        response_metadata={"next_cursor": ""},
                    )
                replies = sorted(
                    (
                        m
                        for m in self.store.channels.get(channel.id, [])
                        if m.get("thread_ts") == ts and m["ts"] != ts and inside(m)
                    ),
                    key=lambda m: Decimal(m["ts"]),
                )
                page, more = _page([parent, *replies], params, offset)
        except _Refused as exc:
            return _fail(exc.error)
        return _ok(messages=page, **more)
