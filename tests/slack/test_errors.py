"""Slack's errors, one row each: what the bot makes of every code in bot/slack/errors.py (and of HTTP failures)."""

from __future__ import annotations

import socket
import urllib.error
from typing import Any

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from bot.domain.enums import SlackFailureKind
from bot.slack.errors import CONTENT_ERRORS, ERRORS, classify, retry_after

R, L, M, B = SlackFailureKind.RETRY, SlackFailureKind.LOOKUP, SlackFailureKind.MESSAGE, SlackFailureKind.BOT
# Written out by hand (not derived from the table), so a changed row fails here.
EXPECTED: dict[str, SlackFailureKind] = {
    **dict.fromkeys(
        ["ratelimited", "rate_limited", "service_unavailable", "request_timeout", "team_added_to_org"], R
    ),
    **dict.fromkeys(["org_login_required", "external_channel_migrating"], R),
    **dict.fromkeys(["fatal_error", "internal_error", "update_failed"], L),
    **dict.fromkeys(
        [
            "channel_not_found", "not_in_channel", "is_archived", "channel_is_archived", "is_inactive",
            "invalid_blocks", "invalid_blocks_format", "msg_too_long", "msg_blocks_too_long", "invalid_attachments",
            "too_many_attachments", "markdown_text_conflict", "no_text", "invalid_metadata_format",
            "invalid_metadata_schema", "metadata_too_large", "invalid_arguments", "message_not_found",
            "cant_update_message", "edit_window_closed", "block_mismatch", "thread_not_found",
            "cannot_reply_to_message", "user_not_in_channel", "user_not_found", "messages_tab_disabled",
            "restricted_action", "restricted_action_read_only_channel", "restricted_action_thread_only_channel",
            "restricted_action_non_threadable_channel", "restricted_action_thread_locked", "ekm_access_denied",
            "channel_is_limited_access", "method_not_supported_for_channel_type", "view_too_large", "not_enabled",
            "hash_conflict", "invalid_trigger_id", "expired_trigger_id", "exchanged_trigger_id", "no_such_subteam",
        ],
        M,
    ),
    **dict.fromkeys(
        [
            "invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive",
            "team_access_not_granted", "missing_scope", "no_permission", "not_allowed_token_type", "access_denied",
            "enterprise_is_restricted", "two_factor_setup_required", "accesslimited", "app_access_restricted",
            "plan_upgrade_required", "message_limit_exceeded",
        ],
        B,
    ),
}  # fmt: skip


def api_error(status: int, body: dict[str, Any] | str, headers: dict[str, Any] | None = None) -> SlackApiError:
    """The exception slack_sdk raises for this HTTP answer."""
    data = (
        body if isinstance(body, dict) else {"ok": False, "error": f"Received a response in a non-JSON format: {body}"}
    )
    response = SlackResponse(
        client=None, http_verb="POST", api_url="x", req_args={}, data=data, headers=headers or {}, status_code=status
    )
    return SlackApiError("failed", response)  # type: ignore[no-untyped-call]  # slack_sdk leaves it unannotated


def test_every_code_in_the_table_has_a_row_here() -> None:
    assert set(ERRORS) == set(EXPECTED)


@pytest.mark.parametrize(("code", "kind"), sorted(EXPECTED.items()))
def test_each_error_code(code: str, kind: SlackFailureKind) -> None:
    failure = classify(api_error(200, {"ok": False, "error": code}))
    assert (failure.kind, failure.code) == (kind, code)
    assert failure.content == (code in CONTENT_ERRORS)
    if code in ("ratelimited", "rate_limited"):
        assert failure.retry_after == 1.0  # no header: the shortest wait


@pytest.mark.parametrize(
    ("exc", "kind", "wait"),
    [
        (api_error(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "7"}), R, 7.0),
        (api_error(429, {"ok": False, "error": "ratelimited"}, {"retry-after": ["3"]}), R, 3.0),
        (api_error(500, "<html>500</html>"), L, None),
        (api_error(502, "<html>bad gateway</html>"), L, None),
        (api_error(503, {"ok": False, "error": "service_unavailable"}), R, None),
        (api_error(200, {"ok": False, "error": "something_new"}), R, None),  # unknown: back off, bounded
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), R, None),  # never left the machine
        (urllib.error.URLError(socket.gaierror(-2, "no such host")), R, None),
        (TimeoutError("timed out"), L, None),  # may have reached Slack
        (urllib.error.URLError(TimeoutError("timed out")), L, None),
        (ConnectionResetError(104, "reset"), L, None),
    ],
)
def test_http_failures(exc: BaseException, kind: SlackFailureKind, wait: float | None) -> None:
    failure = classify(exc)
    assert (failure.kind, failure.retry_after) == (kind, wait)


@pytest.mark.parametrize(("raw", "seconds"), [("2", 2.0), ("0", 1.0), ("abc", 1.0), ("1.5", 1.5), (None, 1.0)])
def test_retry_after_header(raw: str | None, seconds: float) -> None:
    assert retry_after({"Retry-After": raw} if raw is not None else {}) == seconds
