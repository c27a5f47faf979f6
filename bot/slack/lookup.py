"""Finding what is already in Slack: may the bot read a channel, is a message with this outbox key there, a link.

The sender asks before re-posting a message an interrupted attempt may have posted (its key travels in the
message's metadata), so a post is never in a channel twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from slack_sdk.web import SlackResponse

from bot.domain.enums import SlackFailureKind
from bot.logs import get_logger
from bot.slack.errors import classify, header

log = get_logger(__name__)
METADATA_EVENT = "deploybot_outbox"


class SlackLookup:
    """Slack's read methods for the sender, with what it learnt about channels, scopes and links kept."""

    def __init__(self, client: WebClient, margin: timedelta) -> None:
        self.client, self.margin = client, margin
        self._scopes: frozenset[str] | None = None  # the token's scopes, from x-oauth-scopes
        self._lookups: dict[str, bool] = {}  # channel → can the bot read its history?
        self._links: dict[tuple[str, str], str | None] = {}

    def refused(self, channel: str) -> None:
        """Slack refused to let the bot read the channel: in-doubt posts there go again."""
        self._lookups[channel] = False

    def may_read(self, channel: str) -> bool:
        """True when the bot may read the channel's history: a member, with the matching *:history scope."""
        if channel not in self._lookups:
            try:
                resp = self.client.conversations_info(channel=channel)
            except SlackClientError as exc:
                if classify(exc).kind is SlackFailureKind.RETRY or classify(exc).kind is SlackFailureKind.LOOKUP:
                    raise  # ask again later; the row stays in doubt
                self._lookups[channel] = False
                return False
            self._note_scopes(resp)
            info = resp.get("channel") or {}
            scope = "groups:history" if info.get("is_private") else "channels:history"
            if info.get("is_im") or info.get("is_mpim"):
                scope = "im:history" if info.get("is_im") else "mpim:history"
            member = bool(info.get("is_member"))
            self._lookups[channel] = member and (self._scopes is None or scope in self._scopes)
            if not self._lookups[channel]:
                log.warning(
                    "cannot read %s's history (member: %s, needs %s): in-doubt posts go again", channel, member, scope
                )
        return self._lookups[channel]

    def _note_scopes(self, resp: SlackResponse) -> None:
        granted = header(resp.headers or {}, "x-oauth-scopes")
        if granted is not None:
            self._scopes = frozenset(s.strip() for s in granted.split(",") if s.strip())

    def find_posted(
        self, key: str, channel: str, thread_ts: str | None, queued_at: datetime, max_pages: int = 20
    ) -> str | None:
        """The ts of a message carrying the outbox key, looked up from shortly before the row was queued."""
        args: dict[str, Any] = {
            "channel": channel,
            "include_all_metadata": True,
            "limit": 200,
            "oldest": f"{(queued_at - self.margin).timestamp():.6f}",
        }
        cursor = None
        for _ in range(max_pages):
            if thread_ts:
                resp = self.client.conversations_replies(ts=thread_ts, cursor=cursor, **args)
            else:
                resp = self.client.conversations_history(cursor=cursor, **args)
            found = next((m["ts"] for m in resp.get("messages") or [] if _carries(m, key)), None)
            cursor = (resp.get("response_metadata") or {}).get("next_cursor")
            if found is not None or not resp.get("has_more") or not cursor:
                return found
        raise LookupError(f"history too long to search for {key}")

    def permalink(self, channel: str, ts: str) -> str | None:
        """A link to the deployment's thread, or None (the announcement then goes without one)."""
        if (channel, ts) not in self._links:
            try:
                self._links[(channel, ts)] = self.client.chat_getPermalink(channel=channel, message_ts=ts)["permalink"]
            except (SlackClientError, OSError) as exc:
                log.warning("no permalink for %s/%s: %s", channel, ts, exc)
                return None
        return self._links[(channel, ts)]


def _carries(message: Mapping[str, Any], key: str) -> bool:
    """True if a Slack message was posted for this outbox key."""
    meta = message.get("metadata") or {}
    return meta.get("event_type") == METADATA_EVENT and (meta.get("event_payload") or {}).get("key") == key
