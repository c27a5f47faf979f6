"""The global error handler: log with a reference, tell the person the same reference and nothing of the internals."""

from __future__ import annotations

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from bot.logs import get_logger
from bot.slack.blocks import ephemeral
from bot.slack.bolt import VERIFIED
from bot.slack.context import BotContext
from bot.slack.inbound import trusted_response_url
from bot.slack.observe import request_id
from handlers.replies import Respond, channel_from, reply

log = get_logger(__name__)
SORRY = "Sorry, something went wrong on my side (ref `{ref}`). Check `/deploy status` before trying again."


def register(app: App, ctx: BotContext) -> None:
    """Install the error handler."""

    @app.error
    def on_error(error: Exception, request: BoltRequest, client: WebClient) -> None:
        report(ctx, error, request, client)


def report(ctx: BotContext, error: Exception, request: BoltRequest, client: WebClient) -> None:
    """Log with a reference; tell the person the same reference, only when the request was verified."""
    ref = request_id(request.context)  # the id every log line of this request carries
    log.error("listener failed: %s", error, request_id=ref, exc_info=error)
    if not request.context.get(VERIFIED):
        return  # raised before verification: the body's user and response_url are an attacker's to choose
    message = ephemeral(SORRY.format(ref=ref))
    url = request.context.response_url
    trusted = trusted_response_url(url, ctx.settings.slack_api_url)
    respond: Respond | None = request.context.respond if url and trusted else None
    user, channel = request.context.user_id, channel_from(request.context.channel_id)
    if not user:
        return

    def tell() -> None:
        try:
            # reply(): a 429 waits its Retry-After, a 5xx goes again, a used-up or expired URL falls back.
            reply(respond, client, message, user=user, channel=channel)
        except Exception:  # the error handler itself must never raise
            log.exception("could not tell the user about the error", request_id=ref)

    # Off the request thread: retries sleep, and Slack still waits for this request's answer.
    if not ctx.notices.submit("error answer", tell):
        log.error("could not tell %s about the error (ref %s): the notice queue is full", user, ref)
