"""Every Slack Web API client the bot builds comes from here, counted by method in /metrics (bot/slack/metrics.py)."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot.slack.metrics import MeteredWebClient, metered

TIMEOUT_SECONDS = 10


def web_client(token: str | None, base_url: str | None = None, *, timeout: int = TIMEOUT_SECONDS) -> WebClient:
    """A WebClient without retry handlers: they sleep on the calling thread, and a blindly retried post may land twice.

    Callers that may retry (the outbox sender) do so themselves, honouring Retry-After and looking up before re-posting.
    """
    kwargs: dict[str, Any] = {"base_url": base_url} if base_url else {}
    return MeteredWebClient(token=token, timeout=timeout, retry_handlers=[], **kwargs)


def without_retries(client: WebClient) -> WebClient:
    """The same client without retry handlers (a copy if it had any), counted in /metrics."""
    return metered(client, retry_handlers=[])
