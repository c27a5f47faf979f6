"""The composition root of the Slack layer: the Bolt app with every listener kind of handlers/ registered."""

from __future__ import annotations

from bot.slack import observe
from bot.slack.bolt import BoltApp, new_app
from bot.slack.context import BotContext
from handlers import actions, commands, errors, events, modals

# observe first: its middleware binds the request's id, user and channel to every log line of the request.
LISTENERS = (observe.register, commands.register, actions.register, modals.register, events.register, errors.register)


def build_app(ctx: BotContext, *, token_verification: bool = True) -> BoltApp:
    """The `/deploy` command, the buttons, the modal, the App Home and the error handler, on the shared context."""
    return new_app(ctx, LISTENERS, token_verification=token_verification)
