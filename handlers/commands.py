"""`/deploy`: parse in memory, ack at once (with the grammar's error, "Working on it…" or "busy"), queue the rest."""

from __future__ import annotations

import json
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
            # Pure and in memory: parsing first lets the ack itself carry a grammar error or "Working on it…".
            parsed: grammar.Command = grammar.parse(unescape(command.get("text") or ""), ctx.catalog)
        except grammar.GrammarError as exc:
            ack(text=exc.message)
            return
        answer = trusted(ctx, respond, command.get("response_url"))

        def tell(message: Message) -> None:
            reply(answer, client, message, user=command["user_id"], channel=command["channel_id"])

        if isinstance(parsed, grammar.OpenForm):
            work = lambda: open_form(ctx, client, command)  # noqa: E731
        else:
            work = lambda: run(ctx, client, answer, command, parsed)  # noqa: E731
        if not queue(ctx, f"/deploy {parsed.__class__.__name__}", work, tell):
            ack(text=BUSY)
        elif isinstance(parsed, grammar.Deploy):
            ack(text=WORKING)
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


def run(
    ctx: BotContext, client: WebClient, respond: Respond | None, command: dict[str, Any], parsed: grammar.Command
) -> None:
    """Run the command for the person and tell them (or the channel) how it went."""
    actor = Actor(
        user_id=command["user_id"],
        channel_id=command["channel_id"],
        team_id=command.get("team_id"),
        source=ActorSource.COMMAND,
    )
    answer = ctx.usecases.handle(actor, parsed)
    reply(
        respond,
        client,
        answer_message(answer, ctx.clock()),
        user=actor.user_id,
        channel=actor.channel_id,
        public=answer.public,
    )
