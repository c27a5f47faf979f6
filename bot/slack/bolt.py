"""The Bolt app itself: signing secret, Web API client and listener settings; the listeners live in handlers/."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import TypeAlias

from slack_bolt import App, BoltRequest, BoltResponse

from bot.logs import get_logger
from bot.slack.context import BotContext
from bot.slack.inbound import shape_problem
from bot.slack.observe import ContextCopyingExecutor

BoltApp: TypeAlias = App
Registrar = Callable[[App, BotContext], None]
VERIFIED = "deploybot_verified"  # set in a request's context once Bolt's own checks have passed
log = get_logger(__name__)


def signing_secret(ctx: BotContext) -> str:
    """The signing secret; in Socket Mode without one, a random secret no HTTP request can ever match."""
    secret = ctx.settings.slack_signing_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value()
    if ctx.settings.socket_mode:
        return secrets.token_hex(32)  # Socket Mode requests are not signed; forged HTTP ones must still fail
    raise ValueError("SLACK_SIGNING_SECRET is required to serve Slack over HTTP")


def new_app(
    ctx: BotContext,
    registrars: Sequence[Registrar],
    *,
    token_verification: bool = True,
    process_before_response: bool = True,
) -> App:
    """A Bolt app on the context's Web API client with `registrars` applied; no auth.test when not verifying.

    Listeners run on the request's own thread (`process_before_response`): they only parse, ack and queue the work
    on the context's worker pool, so an ack never waits behind slow work in Bolt's five-thread listener pool.
    """
    app = App(
        client=ctx.client,
        signing_secret=signing_secret(ctx),
        token_verification_enabled=token_verification and bool(ctx.client.token),
        process_before_response=process_before_response,
        logger=logging.getLogger("deploybot.bolt"),
        listener_executor=ContextCopyingExecutor(max_workers=5),  # Bolt's default size; listeners keep the log context
    )
    app.use(checked)
    for register in registrars:
        register(app, ctx)
    return app


def checked(request: BoltRequest, next: Callable[[], BoltResponse]) -> BoltResponse | None:
    """After Bolt's verification (HTTP) or the authenticated socket (Socket Mode): refuse mis-shaped bodies (400)."""
    problem = shape_problem(request.body)
    if problem is not None:
        log.warning("refused a malformed %s request: %s", request.mode, problem)
        return BoltResponse(status=400, body={"error": "bad request", "problem": problem})
    request.context[VERIFIED] = True
    return next()
