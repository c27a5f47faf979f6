"""Slack's errors, classified once: what a failed Web API call means for whoever made it.

Slack's docs list each method's error codes but do not classify them; the table below is ours, with the reasons
in docs/SLACK_BEHAVIOUR.md ("Errors"). Every code in it has a test row in tests/slack/test_errors.py.
"""

from __future__ import annotations

import socket
import urllib.error
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain.enums import SlackFailureKind

RETRY, LOOKUP, MESSAGE, BOT = (
    SlackFailureKind.RETRY,
    SlackFailureKind.LOOKUP,
    SlackFailureKind.MESSAGE,
    SlackFailureKind.BOT,
)

ERRORS: Mapping[str, SlackFailureKind] = {
    # Not processed: Slack asks us to come back later.
    "ratelimited": RETRY,  # HTTP 429 with Retry-After
    "rate_limited": RETRY,  # chat.postMessage: "Application has posted too many messages"
    "service_unavailable": RETRY,
    "request_timeout": RETRY,  # "the POST data was either missing or truncated": nothing was done
    "team_added_to_org": RETRY,
    "org_login_required": RETRY,
    "external_channel_migrating": RETRY,
    # "It's possible some aspect of the operation succeeded before the error was raised."
    "fatal_error": LOOKUP,
    "internal_error": LOOKUP,
    "update_failed": LOOKUP,  # chat.update: "Internal update failure."
    # This message, or where it goes, is wrong.
    "channel_not_found": MESSAGE,
    "not_in_channel": MESSAGE,
    "is_archived": MESSAGE,
    "channel_is_archived": MESSAGE,
    "is_inactive": MESSAGE,  # chat.update in a frozen, archived or deleted channel
    "invalid_blocks": MESSAGE,
    "invalid_blocks_format": MESSAGE,
    "msg_too_long": MESSAGE,
    "msg_blocks_too_long": MESSAGE,
    "invalid_attachments": MESSAGE,
    "too_many_attachments": MESSAGE,
    "markdown_text_conflict": MESSAGE,
    "no_text": MESSAGE,
    "invalid_metadata_format": MESSAGE,
    "invalid_metadata_schema": MESSAGE,
    "metadata_too_large": MESSAGE,
    "invalid_arguments": MESSAGE,
    "message_not_found": MESSAGE,
    "cant_update_message": MESSAGE,
    "edit_window_closed": MESSAGE,
    "block_mismatch": MESSAGE,
    "thread_not_found": MESSAGE,
    "cannot_reply_to_message": MESSAGE,
    "user_not_in_channel": MESSAGE,
    "user_not_found": MESSAGE,
    "messages_tab_disabled": MESSAGE,
    "restricted_action": MESSAGE,
    "restricted_action_read_only_channel": MESSAGE,
    "restricted_action_thread_only_channel": MESSAGE,
    "restricted_action_non_threadable_channel": MESSAGE,
    "restricted_action_thread_locked": MESSAGE,
    "ekm_access_denied": MESSAGE,  # chat.postMessage: "…disabled sending messages to this channel"
    "channel_is_limited_access": MESSAGE,
    "method_not_supported_for_channel_type": MESSAGE,
    "view_too_large": MESSAGE,
    "not_enabled": MESSAGE,  # views.publish with the Home tab off
    "hash_conflict": MESSAGE,
    "invalid_trigger_id": MESSAGE,
    "expired_trigger_id": MESSAGE,
    "exchanged_trigger_id": MESSAGE,
    "no_such_subteam": MESSAGE,
    # The token or the installation: every call will fail the same way until a person acts.
    "invalid_auth": BOT,
    "not_authed": BOT,
    "token_revoked": BOT,
    "token_expired": BOT,
    "account_inactive": BOT,
    "team_access_not_granted": BOT,
    "missing_scope": BOT,
    "no_permission": BOT,
    "not_allowed_token_type": BOT,
    "access_denied": BOT,
    "enterprise_is_restricted": BOT,
    "two_factor_setup_required": BOT,
    "accesslimited": BOT,
    "app_access_restricted": BOT,
    "plan_upgrade_required": BOT,
    "message_limit_exceeded": BOT,  # a free workspace's message quota: nothing posts until it resets
}
# Errors about the message's content: the same text without blocks may still go through.
CONTENT_ERRORS = frozenset(
    {
        "invalid_blocks",
        "invalid_blocks_format",
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_attachments",
        "too_many_attachments",
        "markdown_text_conflict",
    }
)
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class SlackFailure:
    """One failed call, classified: its kind, Slack's code (or a description), and any Retry-After."""

    kind: SlackFailureKind
    code: str
    retry_after: float | None = None
    status: int | None = None

    @property
    def content(self) -> bool:
        """True when the message's content was refused (a plain-text fallback may pass)."""
        return self.code in CONTENT_ERRORS


def classify(exc: BaseException) -> SlackFailure:
    """What a Slack call's exception means (SlackApiError, a connection error, a timeout…)."""
    if isinstance(exc, SlackApiError):
        response: Any = exc.response  # slack_sdk leaves SlackApiError.response unannotated
        status = int(getattr(response, "status_code", 0) or 0)
        code = str(response.get("error") or "") if hasattr(response, "get") else ""
        if status == 429 or code in ("ratelimited", "rate_limited"):
            wait = retry_after(getattr(response, "headers", None) or {})
            return SlackFailure(RETRY, code or "ratelimited", wait, status)
        if code in ERRORS:
            return SlackFailure(ERRORS[code], code, None, status)
        if status >= 500:
            # A 5xx (often with an HTML body, so no stable code) may come after the work was done.
            return SlackFailure(LOOKUP, f"HTTP {status}", None, status)
        return SlackFailure(RETRY, code or f"HTTP {status}", None, status)
    if _never_sent(exc):
        return SlackFailure(RETRY, _describe(exc))
    # Timeouts and dropped connections: the request may have reached Slack.
    return SlackFailure(LOOKUP, _describe(exc))


def _never_sent(exc: BaseException) -> bool:
    """True for failures before the request left (connection refused, name resolution)."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, ConnectionRefusedError | socket.gaierror)


def _describe(exc: BaseException) -> str:
    name = "SlackClientError" if isinstance(exc, SlackClientError) else type(exc).__name__
    return f"{name}: {exc}"[:300]


def retry_after(headers: Mapping[str, Any]) -> float:
    """Seconds from a Retry-After header (any casing; slack_sdk keeps the server's), at least 1."""
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    try:
        return max(DEFAULT_RETRY_AFTER, float(raw)) if raw is not None else DEFAULT_RETRY_AFTER
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER


def header(headers: Mapping[str, Any], name: str) -> str | None:
    """A response header by case-insensitive name (slack_sdk's headers are a plain dict)."""
    raw = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    return str(raw) if raw is not None else None
