"""Turning a use case's Answer into a Slack message, and getting it to the person (or channel) it is for."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.domain.enums import AnswerKind, SlackFailureKind
from bot.engine.answers import Answer
from bot.logs import get_logger
from bot.slack.blocks import Message, ephemeral, help_message, history_message, status_message
from bot.slack.context import BotContext
from bot.slack.errors import classify, retry_after
from bot.slack.inbound import trusted_response_url
from bot.slack.retry import SlackRetry, with_retries

log = get_logger(__name__)
Respond = Callable[..., Any]
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")


def answer_message(answer: Answer, now: datetime) -> Message:
    """The message for an Answer: status, history and help through their builders, the rest as one line."""
    if answer.kind is AnswerKind.STATUS and answer.report is not None:
        return status_message(answer.report, now)
    if answer.kind is AnswerKind.HISTORY:
        return history_message(answer.views, now)
    if answer.kind is AnswerKind.HELP:
        return help_message()
    return ephemeral(answer_line(answer))


def answer_line(answer: Answer) -> str:
    """A refusal says so and names the rule behind it (the same code the audit event stores)."""
    if answer.ok:
        return answer.text
    if answer.rule:
        return f"🚫 Not allowed: {answer.text} (rule `{answer.rule}`)"
    return f"⚠️ {answer.text}"


def trusted(ctx: BotContext, respond: Respond | None, response_url: object) -> Respond | None:
    """Bolt's `respond`, only when the payload's response_url is Slack's (or the configured stand-in's)."""
    if respond is None or not response_url:
        return None
    if trusted_response_url(response_url, ctx.settings.slack_api_url):
        return respond
    log.warning("ignored a response_url that is not Slack's: %.80s", response_url)
    return None


def reply(
    respond: Respond | None,
    client: WebClient,
    message: Message,
    *,
    user: str,
    channel: str | None,
    public: bool = False,
) -> bool:
    """Answer through `response_url` when there is one, else the Web API; a public answer goes to everyone."""
    if respond is not None:
        try:
            sent = with_retries(lambda: _respond(respond, message, public), "response_url", idempotent=False)
            if sent:
                return True
        except Exception as exc:  # an expired or used-up response_url: fall back to the Web API
            log.warning("response_url failed (%s); answering through the Web API", exc)
    return post(client, message, user=user, channel=channel, public=public)


def _respond(respond: Respond, message: Message, public: bool) -> bool:
    """POST to the response_url; True when Slack took it (Bolt's `respond` returns the status, never raises)."""
    kind = "in_channel" if public else "ephemeral"
    result = respond(**message.as_kwargs(), replace_original=False, response_type=kind)
    status = getattr(result, "status_code", 200)
    if status == 429:
        wait = retry_after(getattr(result, "headers", None) or {})
        raise SlackRetry(f"response_url answered HTTP 429 (Retry-After {wait:.0f} s)", retry_after=wait)
    if status >= 500:
        # An HTML page: Slack may or may not have shown the answer, and nobody can read an ephemeral back, so it
        # goes again (slack_sdk's ServerErrorRetryHandler's rule) rather than being lost.
        raise SlackRetry(f"response_url answered HTTP {status}")
    if not 200 <= status < 300:  # expired, used up (five uses), refused: the Web API answers instead
        log.info("response_url answered HTTP %s (%.60s); answering through the Web API", status, _body(result))
    return bool(200 <= status < 300)


def _body(result: object) -> str:
    """A response_url answer's body, whichever way Slack worded it (JSON or a bare code)."""
    return str(getattr(result, "body", "") or "")


def post(client: WebClient, message: Message, *, user: str, channel: str | None, public: bool = False) -> bool:
    """`chat.postMessage` (public) or `chat.postEphemeral`; if the channel refuses, a DM to the person."""
    try:
        if channel and public:
            with_retries(
                lambda: client.chat_postMessage(channel=channel, **message.as_kwargs()),
                "chat.postMessage",
                idempotent=False,
            )
            return True
        if channel and not channel.startswith("D"):
            with_retries(
                lambda: client.chat_postEphemeral(channel=channel, user=user, **message.as_kwargs()),
                "chat.postEphemeral",
                idempotent=False,
                server_errors=True,  # an ephemeral cannot be read back: a 5xx is sent again, not dropped
            )
            return True
    except (SlackClientError, OSError) as exc:
        if _maybe_shown(exc):
            log.warning("Slack may have shown %s the answer in %s (%s): not sent again as a DM", user, channel, exc)
            return True
        log.warning("could not answer %s in %s (%s); sending a DM", user, channel, exc)
    return direct(client, message, user)


def _maybe_shown(exc: Exception) -> bool:
    """Slack answered an error code that means "some aspect may have succeeded" (fatal_error, internal_error)."""
    failure = classify(exc)
    return isinstance(exc, SlackApiError) and failure.kind is SlackFailureKind.LOOKUP and (failure.status or 0) < 500


def direct(client: WebClient, message: Message, user: str) -> bool:
    """A message in the bot's DM with the person (the App Home's Messages tab)."""
    try:
        # The bot may not read its DMs (no im:history), so a 5xx is sent again rather than the answer dropped.
        with_retries(
            lambda: client.chat_postMessage(channel=user, **message.as_kwargs()),
            "chat.postMessage",
            idempotent=False,
            server_errors=True,
        )
        return True
    except (SlackClientError, OSError) as exc:
        log.error("could not reach %s at all: %s", user, exc)
        return False


def channel_from(raw: object) -> str | None:
    """A channel id if `raw` looks like one (private_metadata and payloads are not trusted blindly)."""
    return raw if isinstance(raw, str) and CHANNEL_ID.match(raw) else None
