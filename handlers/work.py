"""Handing a request's slow part to the worker pool, and telling the person when it is busy or fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from bot.logs import context_field, get_logger
from bot.slack.blocks import Message, ephemeral
from bot.slack.context import BotContext

log = get_logger(__name__)
Tell = Callable[[Message], object]
BUSY = "⏳ I'm busy with other requests right now, so I did nothing. Try again in a moment."
SORRY = "Sorry, something went wrong on my side (ref `{ref}`). Check `/deploy status` before trying again."
STOPPING = "I was restarting before I got to this, so I did nothing. Try again in a moment."


def queue(ctx: BotContext, name: str, run: Callable[[], None], tell: Tell) -> bool:
    """Queue `run` (after the ack); False when the pool is full. A failure is logged and told with a reference."""

    def guarded() -> None:
        try:
            run()
        except Exception as exc:
            # The request's id when the job inherited it: the person, the logs and the error handler share one ref.
            ref = str(context_field("request_id") or uuid.uuid4().hex[:8])
            log.error("%s failed (ref %s): %s", name, ref, exc, exc_info=exc)
            tell(ephemeral(SORRY.format(ref=ref)))

    return ctx.work.submit(name, guarded, abandon=lambda: tell(ephemeral(STOPPING)))


def busy(ctx: BotContext, name: str, tell: Tell) -> None:
    """Tell the person we are busy, off the request thread (the ack of a click carries no text)."""
    if not ctx.notices.submit(f"busy:{name}", lambda: tell(ephemeral(BUSY))):
        log.error("could not even tell the person that %s was refused as busy", name)
