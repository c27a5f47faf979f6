"""`/deploy`: parse in memory, ack at once (empty, or with the grammar's error or "busy"), queue the rest.

The answer is the first thing the person sees: Slack cannot replace the ephemeral a command's ack shows (a
response_url's `replace_original` posts a new message, docs/SLACK_BEHAVIOUR.md), so a "Working on it…" in the ack
would stay on screen above the answer. It is said only when the answer is late (`LATE_AFTER`), just before it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.domain.enums import ActorSource
from bot.domain.grammar import parser as grammar
from bot.engine.answers import Actor
from bot.logs import get_logger
from bot.slack.blocks import Message, deploy_modal, ephemeral
from bot.slack.context import BotContext
from handlers.replies import Respond, answer_message, reply, trusted
from handlers.work import BUSY, queue

log = get_logger(__name__)
COMMAND = "/deploy"
WORKING = "Working on it…"
LATE_AFTER = 2.0  # seconds after the ack without an answer before "Working on it…" is said


def unescape(text: str) -> str:
    """Slack sends `&`, `<` and `>` escaped in command text; the grammar reads what the person typed."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def form_metadata(channel_id: str) -> str:
    """What the modal remembers: the channel to answer in once it is submitted."""
    return json.dumps({"channel": channel_id})


def register(app: App, ctx: BotContext) -> None:
    """Listen for `/deploy`."""

    @app.command(COMMAND)
    def deploy_command(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        try:
            # Pure and in memory: parsing first lets the ack itself carry a grammar error.
            parsed: grammar.Command = grammar.parse(unescape(command.get("text") or ""), ctx.catalog)
        except grammar.GrammarError as exc:
            ack(text=exc.message)
            return
        answer = trusted(ctx, respond, command.get("response_url"))

        def tell(message: Message) -> None:
            reply(answer, client, message, user=command["user_id"], channel=command["channel_id"])

        acked = time.monotonic()
        if isinstance(parsed, grammar.OpenForm):
            work = lambda: open_form(ctx, client, command)  # noqa: E731
        else:
            work = lambda: run(ctx, client, answer, command, parsed, acked)  # noqa: E731
        if not queue(ctx, f"/deploy {parsed.__class__.__name__}", work, tell):
            ack(text=BUSY)
        else:
            ack()


def open_form(ctx: BotContext, client: WebClient, command: dict[str, Any]) -> None:
    """`/deploy` alone: the phone-friendly form (the trigger_id lasts 3 s: queued first, it goes first)."""
    view = deploy_modal(ctx.catalog.names(), private_metadata=form_metadata(command["channel_id"]))
    try:
        client.views_open(trigger_id=command["trigger_id"], view=view)
    except SlackClientError as exc:
        log.warning("views.open failed for %s: %s", command.get("user_id"), exc)
        text = "I couldn't open the deploy form in time; try again, or type `/deploy help`."
        reply(None, client, ephemeral(text), user=command["user_id"], channel=command["channel_id"])


class Late:
    """Says something once if the work it wraps outlasts a deadline, and never after the work is done."""

    def __init__(self, say: Callable[[], object], after: float) -> None:
        self._say = say
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(0.0, after), self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        with self._lock:
            if not self._done:
                self._say()

    def __enter__(self) -> Late:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()
        with self._lock:  # waits for a "Working on it…" being sent, so the answer comes after it
            self._done = True


def run(
    ctx: BotContext,
    client: WebClient,
    respond: Respond | None,
    command: dict[str, Any],
    parsed: grammar.Command,
    acked: float | None = None,
) -> None:
    """Run the command for the person and tell them (or the channel) how it went; "Working on it…" only if late."""
    actor = Actor(
        user_id=command["user_id"],
        channel_id=command["channel_id"],
        team_id=command.get("team_id"),
        source=ActorSource.COMMAND,
    )
    waited = time.monotonic() - acked if acked is not None else 0.0

    def working() -> None:
        reply(respond, client, ephemeral(WORKING), user=actor.user_id, channel=actor.channel_id)

    with Late(working, LATE_AFTER - waited):
        answer = ctx.usecases.handle(actor, parsed)
    reply(
        respond,
        client,
        answer_message(answer, ctx.clock()),
        user=actor.user_id,
        channel=actor.channel_id,
        public=answer.public,
    )
