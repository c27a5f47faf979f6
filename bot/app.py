"""Build the Bolt app: the `/deploy` command, the buttons, the modal and the App Home, on the shared context."""

from __future__ import annotations

import logging
import secrets
import uuid

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient

from bot.slack.blocks import ephemeral
from bot.slack.context import BotContext
from handlers import actions, commands, events, modals
from handlers.replies import Respond, direct

log = logging.getLogger(__name__)
SORRY = "Sorry, something went wrong on my side (ref `{ref}`). Check `/deploy status` before trying again."


def signing_secret(ctx: BotContext) -> str:
    """The signing secret; in Socket Mode without one, a random secret no HTTP request can ever match."""
    secret = ctx.settings.slack_signing_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value()
    if ctx.settings.socket_mode:
        return secrets.token_hex(32)  # Socket Mode requests are not signed; forged HTTP ones must still fail
    raise ValueError("SLACK_SIGNING_SECRET is required to serve Slack over HTTP")


def build_app(ctx: BotContext, *, token_verification: bool = True) -> App:
    """A Bolt app using the context's Web API client; `token_verification=False` skips auth.test at start."""
    app = App(
        client=ctx.client,
        signing_secret=signing_secret(ctx),
        token_verification_enabled=token_verification and bool(ctx.client.token),
        process_before_response=False,
        logger=logging.getLogger("deploybot.bolt"),
    )
    for module in (commands, actions, modals, events):
        module.register(app, ctx)
    app.error(on_error)
    return app


def on_error(error: Exception, request: BoltRequest, client: WebClient) -> None:
    """Log with a reference, tell the person with the same reference and nothing of the internals."""
    ref = uuid.uuid4().hex[:8]
    log.error("listener failed (ref %s): %s", ref, error, exc_info=error)
    message = ephemeral(SORRY.format(ref=ref))
    respond: Respond | None = request.context.respond if request.context.response_url else None
    user = request.context.user_id
    try:
        if respond is not None:
            respond(text=message.text, blocks=message.blocks, response_type="ephemeral", replace_original=False)
        elif user:
            direct(client, message, user)
    except Exception:  # the error handler itself must never raise
        log.exception("could not tell the user about error %s", ref)
