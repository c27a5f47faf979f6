"""The stand-in's state: messages, ephemerals, views, trigger ids, response URLs, the call log."""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.slack import workspace as ws
from sandbox.slack.access import DEFAULT_BOT_SCOPES
from sandbox.slack.faults import Faults

TRIGGER_TTL = 3.0  # seconds: Slack's trigger_id lifetime, and it works once
RESPONSE_URL_TTL = 30 * 60.0
RESPONSE_URL_USES = 5

Message = dict[str, Any]


@dataclass
class Settings:
    """Switches the control API can flip at run time."""

    rate_limit: bool = False
    rate_interval: float = 1.0  # seconds between chat.postMessage calls per channel
    # chat.update is Slack's Tier 3: 50+ calls a minute per workspace (per app). Set, at most this many calls in any
    # 60 s of the stand-in's clock, the rest answered 429 with Retry-After; 0: not enforced (as before).
    update_tier_per_minute: int = 0
    ack_timeout: float = 3.0  # Slack gives an app 3 s to answer a request
    clock_offset: float = 0.0  # lets tests age trigger ids and response URLs without sleeping
    # Set: the stand-in's clock stands at this wall time (plus the offset) until moved on by `advance_clock`, so a
    # test decides when a rate window or an expiry passes, however loaded the machine is.
    frozen_at: float | None = None
    scopes: frozenset[str] = DEFAULT_BOT_SCOPES  # what the bot token was granted
    token_error: str | None = None  # e.g. token_revoked: every call with the bot token answers it
    latency: float = 0.0  # seconds added to every Web API call (or only to `latency_methods`' calls)
    latency_methods: frozenset[str] = frozenset()  # empty: every method
    latency_spread: float = 0.0  # each slowed call waits `latency` plus a uniform draw in [0, this) seconds
    # Slack refuses blocks "too long" near 13 k characters (observed 13,172–13,297; undocumented): the limit on
    # the blocks' JSON length, adjustable to test the bot on either side of it.
    blocks_char_limit: int = 13_000
    # chat.update documents `msg_too_long` at 4,000 characters of `text` (postMessage truncates at 40,000).
    update_text_limit: int = 4_000
    # Undocumented (sandbox/slack/responses.py): how an expired or used-up response_url's 404 is worded ("json":
    # {"ok": false, "error": "expired_url"}, "text": the bare code), and whether a 429 or 5xx spends one of its uses.
    response_url_errors: str = "json"
    response_url_faults_spend_use: bool = True

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return {k: sorted(v) if isinstance(v, frozenset) else v for k, v in self.__dict__.items()}


@dataclass
class ResponseUrl:
    """One `response_url`: where it came from, and how often it has been used."""

    id: str
    user: str
    channel: str
    created: float
    message_ts: str | None = None
    ephemeral: bool = False
    uses: int = 0


@dataclass
class Trigger:
    """A trigger id handed to the bot with a command, click or submission."""

    user: str
    created: float
    used: bool = False


@dataclass
class Store:
    """Everything the stand-in remembers; every access goes through `lock`."""

    settings: Settings = field(default_factory=Settings)
    lock: threading.Condition = field(default_factory=threading.Condition)
    version: int = 0
    channels: dict[str, list[Message]] = field(default_factory=dict)
    ephemerals: dict[str, list[Message]] = field(default_factory=dict)
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    view_owner: dict[str, str] = field(default_factory=dict)
    view_errors: dict[str, dict[str, str]] = field(default_factory=dict)
    home: dict[str, str] = field(default_factory=dict)
    modals: dict[str, list[str]] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    response_urls: dict[str, ResponseUrl] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    responses: list[dict[str, Any]] = field(default_factory=list)  # POSTs to response URLs (responses.ResponseCall)
    last_post: dict[str, float] = field(default_factory=dict)
    updates: deque[float] = field(default_factory=deque)  # when chat.update calls were let through (tier window)
    notices: list[dict[str, Any]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    in_flight: Counter[str] = field(default_factory=Counter)  # Web API calls being served now, per method
    closed: bool = False
    _last_ts_us: int = 0

    def __post_init__(self) -> None:
        self.faults = Faults(self.now)  # Retry-After holds and outages run on the clock tests may stop and move

    def now(self) -> float:
        """The clock for expiries and the rate limit, which tests may move forward (or stop)."""
        frozen = self.settings.frozen_at
        return (time.time() if frozen is None else frozen) + self.settings.clock_offset

    def reset(self) -> None:
        """Forget all messages, views, calls and injected faults; keep the settings."""
        self.faults.clear()
        with self.lock:
            for part in (
                self.channels,
                self.ephemerals,
                self.views,
                self.view_owner,
                self.view_errors,
                self.home,
                self.modals,
                self.triggers,
                self.response_urls,
                self.last_post,
                self.updates,
            ):
                part.clear()
            self.calls.clear()
            self.responses.clear()
            self.notices.clear()
            self.touch()

    def touch(self) -> None:
        """Record a change and wake whoever waits for one (the page's long poll)."""
        with self.lock:
            self.version += 1
            self.lock.notify_all()

    def wait_for_change(self, since: int, timeout: float) -> None:
        """Block until the version passes `since`, the timeout ends, or the server stops."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.version <= since and not self.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self.lock.wait(left)

    def close(self) -> None:
        """Release every waiting long poll."""
        with self.lock:
            self.closed = True
            self.lock.notify_all()

    def next_ts(self) -> str:
        """A Slack-style message ts ("1732610000.000100"), strictly increasing."""
        with self.lock:
            self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
            sec, usec = divmod(self._last_ts_us, 1_000_000)
            return f"{sec}.{usec:06d}"

    def issue_trigger(self, user: str) -> str:
        """A new trigger id in Slack's format (digits.digits.hex)."""
        trigger_id = f"{secrets.randbelow(10**12)}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"
        with self.lock:
            self.triggers[trigger_id] = Trigger(user, self.now())
        return trigger_id

    def use_trigger(self, trigger_id: str) -> tuple[str | None, str | None]:
        """Spend a trigger id: (user, None) if valid, else (None, Slack's error code)."""
        with self.lock:
            trigger = self.triggers.get(trigger_id)
            if trigger is None:
                return None, "invalid_trigger_id"
            if trigger.used:
                return None, "exchanged_trigger_id"
            if self.now() - trigger.created > TRIGGER_TTL:
                return None, "expired_trigger_id"
            trigger.used = True
            return trigger.user, None

    def issue_response_url(self, user: str, channel: str, message_ts: str | None, ephemeral: bool) -> str:
        """Register a response URL and return its id."""
        rid = secrets.token_urlsafe(18)
        with self.lock:
            self.response_urls[rid] = ResponseUrl(rid, user, channel, self.now(), message_ts, ephemeral)
        return rid

    def use_response_url(self, rid: str, *, spend: bool = True) -> tuple[ResponseUrl | None, str | None]:
        """Spend one of a response URL's five uses (or, with `spend=False`, only check one is left)."""
        with self.lock:
            entry = self.response_urls.get(rid)
            if entry is None:
                return None, "invalid_url"
            if self.now() - entry.created > RESPONSE_URL_TTL:
                return None, "expired_url"
            if entry.uses >= RESPONSE_URL_USES:
                return None, "used_url"
            entry.uses += spend
            return entry, None

    def find_message(self, channel: str, ts: str) -> Message | None:
        """A root message or thread reply by ts."""
        with self.lock:
            return next((m for m in self.channels.get(channel, []) if m["ts"] == ts), None)

    def find_ephemeral(self, user: str, ts: str) -> Message | None:
        """An ephemeral message shown to `user`, by ts."""
        with self.lock:
            return next((m for m in self.ephemerals.get(user, []) if m["ts"] == ts), None)

    def add_message(self, channel: str, message: Message) -> Message:
        """Append a message (stamping its ts) and keep the parent's reply summary current."""
        with self.lock:
            message["ts"] = self.next_ts()
            parent = self.find_message(channel, message["thread_ts"]) if message.get("thread_ts") else None
            if parent is not None:
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if message["user"] not in users:
                    users.append(message["user"])
                parent["reply_users_count"] = len(users)
                parent["latest_reply"] = message["ts"]
                message["parent_user_id"] = parent["user"]
            self.channels.setdefault(channel, []).append(message)
            self.touch()
            return message

    def delete_message(self, channel: str, ts: str) -> bool:
        """Remove a message; its replies stay, as in Slack."""
        with self.lock:
            msgs = self.channels.get(channel, [])
            kept = [m for m in msgs if m["ts"] != ts]
            self.channels[channel] = kept
            self.touch()
            return len(kept) != len(msgs)

    def add_ephemeral(self, user: str, channel: str, message: Message) -> Message:
        """Show a message to one user only."""
        with self.lock:
            message.update(ts=self.next_ts(), channel=channel, is_ephemeral=True)
            self.ephemerals.setdefault(user, []).append(message)
            self.touch()
            return message

    def remove_ephemeral(self, user: str, ts: str) -> None:
        """Drop an ephemeral (`delete_original` from its response URL)."""
        with self.lock:
            self.ephemerals[user] = [m for m in self.ephemerals.get(user, []) if m["ts"] != ts]
            self.touch()

    def log_call(self, method: str, params: dict[str, Any], status: int, body: dict[str, Any]) -> None:
        """Remember a Web API call for `GET /_sandbox/calls`."""
        entry = {
            "method": method,
            "params": params,
            "time": time.time(),
            "status": status,
            "ok": bool(body.get("ok")),
            "error": body.get("error"),
        }
        with self.lock:
            self.calls.append(entry)

    def calls_for(self, method: str | None) -> list[dict[str, Any]]:
        """The call log, optionally for one method."""
        with self.lock:
            return [copy.deepcopy(c) for c in self.calls if method is None or c["method"] == method]

    def user_views(self, user: str) -> dict[str, Any]:
        """A user's home tab and stack of open modals."""
        home_id = self.home.get(user)
        return {
            "home": self.views.get(home_id) if home_id else None,
            # Inline errors from `response_action: errors` ride along for the page to show under the inputs.
            "modals": [
                {**self.views[v], "errors": self.view_errors.get(v, {})}
                for v in self.modals.get(user, [])
                if v in self.views
            ],
        }

    def snapshot(self, channel: str | None = None) -> dict[str, Any]:
        """A deep copy of what the page and the tests look at."""
        with self.lock:
            channels = {c: m for c, m in self.channels.items() if channel is None or c == channel}
            return copy.deepcopy(
                {
                    "version": self.version,
                    "channels": channels,
                    "ephemerals": self.ephemerals,
                    "views": {u.id: self.user_views(u.id) for u in ws.USERS},
                    "settings": self.settings.as_dict(),
                    "notices": self.notices[-20:],
                }
            )
