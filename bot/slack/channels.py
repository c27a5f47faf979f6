"""Can the bot post where a deployment would be narrated? conversations.info, asked before any ECS call."""

from __future__ import annotations

import threading
import time

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain.enums import ChannelAccess
from bot.logs import get_logger
from bot.slack.health import SlackHealth
from bot.slack.retry import with_retries

log = get_logger(__name__)
CACHE_SECONDS = 60.0  # the bot may be invited or removed at any time: remember an answer briefly
# What conversations.info says when the bot cannot see the conversation at all.
HIDDEN_ERRORS = frozenset({"channel_not_found", "not_in_channel", "channel_is_limited_access"})


class ChannelAccessCheck:
    """ChannelAccess of a conversation, from conversations.info (cached for a minute)."""

    def __init__(self, client: WebClient, health: SlackHealth | None = None) -> None:
        self.client = client
        self.health = health
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, ChannelAccess]] = {}

    def __call__(self, channel: str) -> ChannelAccess:
        """POSTABLE, DIRECT, ARCHIVED, HIDDEN, or UNKNOWN when Slack did not answer."""
        if channel.startswith("D"):
            return ChannelAccess.DIRECT  # a DM (the bot's own, or between people: either way not for approvals)
        with self._lock:
            cached = self._cache.get(channel)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        access = self._ask(channel)
        if access is not ChannelAccess.UNKNOWN:
            with self._lock:
                self._cache[channel] = (time.monotonic(), access)
        return access

    def _ask(self, channel: str) -> ChannelAccess:
        try:
            resp = with_retries(lambda: self.client.conversations_info(channel=channel), "conversations.info")
        except SlackApiError as exc:
            error = str(exc.response.get("error") or "")
            if error in HIDDEN_ERRORS:
                return ChannelAccess.HIDDEN
            if error == "missing_scope" and exc.response.get("needed") in ("mpim:read", "im:read"):
                return ChannelAccess.HIDDEN  # a group DM: not a place for approvals either
            if error == "missing_scope" and self.health is not None:
                self.health.bot_error(error, "conversations.info")
            log.warning("cannot tell whether the bot may post in %s: %s", channel, error)
            return ChannelAccess.UNKNOWN
        except (SlackClientError, OSError) as exc:
            log.warning("cannot tell whether the bot may post in %s: %s", channel, exc)
            return ChannelAccess.UNKNOWN
        info = resp.get("channel") or {}
        if info.get("is_archived"):
            return ChannelAccess.ARCHIVED
        if info.get("is_im"):
            return ChannelAccess.DIRECT
        if info.get("is_mpim") or (info.get("is_private") and not info.get("is_member")):
            return ChannelAccess.HIDDEN
        return ChannelAccess.POSTABLE  # a member, or a public channel (chat:write.public)
