"""Prometheus metrics of the Slack side: Web API calls by method, and how fast requests are acknowledged."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Histogram
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.web import SlackResponse

from bot.slack.keepalive import KeepAliveClient

CALLS = Counter("deploybot_slack_api_calls_total", "Slack Web API calls", ["method"])
ERRORS = Counter(
    "deploybot_slack_api_errors_total",
    "Failed Slack Web API calls, by kind: ratelimited (429), server (5xx), refused (ok=false), transport",
    ["method", "kind"],
)
SECONDS = Histogram(
    "deploybot_slack_api_call_duration_seconds",
    "Duration of one Slack Web API call",
    ["method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
ACK_SECONDS = Histogram(
    "deploybot_slack_ack_seconds",
    "From a Slack request's arrival to the bot's HTTP answer (Slack waits 3 s), by request kind",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0),
)


def error_kind(exc: Exception) -> str:
    """The `kind` label of a failed call."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        if status == 429 or exc.response.get("error") == "ratelimited":
            return "ratelimited"
        return "server" if status >= 500 else "refused"
    return "transport"


class MeteredWebClient(KeepAliveClient):
    """A WebClient that counts every call, error and 429 by method (all methods go through `api_call`), over
    kept-alive connections (bot/slack/keepalive.py)."""

    def api_call(
        self,
        api_method: str,
        *,
        http_verb: str = "POST",
        files: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        json: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        auth: dict[str, Any] | None = None,
    ) -> SlackResponse:
        """The call, counted."""
        started = time.monotonic()
        CALLS.labels(api_method).inc()
        try:
            return super().api_call(
                api_method,
                http_verb=http_verb,
                files=files,
                data=data,
                params=params,
                json=json,
                headers=headers,
                auth=auth,
            )
        except Exception as exc:
            ERRORS.labels(api_method, error_kind(exc)).inc()
            raise
        finally:
            SECONDS.labels(api_method).observe(time.monotonic() - started)


def metered(client: WebClient, *, retry_handlers: list[RetryHandler] | None = None) -> MeteredWebClient:
    """The client itself if it is counted already (and keeps its retry handlers), else a counted copy."""
    handlers = client.retry_handlers if retry_handlers is None else retry_handlers
    if isinstance(client, MeteredWebClient) and handlers == client.retry_handlers:
        return client
    return MeteredWebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        team_id=client.default_params.get("team_id"),
        logger=client.logger,
        retry_handlers=list(handlers),
    )
