"""The Bolt app itself: signing secret, Web API client and listener settings; the listeners live in handlers/."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from typing import TypeAlias

from slack_bolt import App

from bot.slack.context import BotContext
from bot.slack.observe import ContextCopyingExecutor

BoltApp: TypeAlias = App
Registrar = Callable[[App, BotContext], None]


def signing_secret(ctx: BotContext) -> str:
    """The signing secret; in Socket Mode without one, a random secret no HTTP request can ever match."""
    secret = ctx.settings.slack_signing_secret
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value()
    if ctx.settings.socket_mode:
        return secrets.token_hex(32)  # Socket Mode requests are not signed; forged HTTP ones must still fail
    raise ValueError("SLACK_SIGNING_SECRET is required to serve Slack over HTTP")


def new_app(ctx: BotContext, registrars: Sequence[Registrar], *, token_verification: bool = True) -> App:
    """A Bolt app on the context's Web API client with `registrars` applied; no auth.test when not verifying."""
    app = App(
        client=ctx.client,
        signing_secret=signing_secret(ctx),
        token_verification_enabled=token_verification and bool(ctx.client.token),
        process_before_response=False,
        logger=logging.getLogger("deploybot.bolt"),
        listener_executor=ContextCopyingExecutor(max_workers=5),  # Bolt's default size; listeners keep the log context
    )
    for register in registrars:
        register(app, ctx)
    return app
