"""The `/deploy` modal's submission: validate field by field (errors inline), then close it and start the deployment."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.domain.catalog.loader import Catalog
from bot.domain.enums import ActorSource
from bot.domain.grammar import parser as grammar
from bot.domain.grammar.options import quote_reason
from bot.engine.answers import Actor
from bot.logs import get_logger
from bot.slack.blocks import FORM_CALLBACK, Message, form_values, modal_errors
from bot.slack.context import BotContext
from handlers.replies import answer_message, channel_from, post
from handlers.work import BUSY, queue

log = get_logger(__name__)
Fields = Mapping[str, str | None]


def register(app: App, ctx: BotContext) -> None:
    """Listen for the deploy form being submitted."""

    @app.view(FORM_CALLBACK)
    def form_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        values = form_values(((view.get("state") or {}).get("values")) or {})
        checked = read_form(values, ctx.catalog)
        if isinstance(checked, dict):
            ack(**modal_errors(checked))  # the modal stays open, each message under its field
            return
        user = str(body["user"]["id"])
        channel = metadata_channel(view.get("private_metadata"))
        actor = Actor(
            user_id=user,
            channel_id=channel or user,
            team_id=(body.get("team") or {}).get("id"),
            source=ActorSource.MODAL,
        )

        def tell(message: Message) -> None:
            post(client, message, user=user, channel=channel)

        def work() -> None:
            answer = ctx.usecases.handle(actor, checked)
            post(client, answer_message(answer, ctx.clock()), user=user, channel=channel, public=answer.public)

        if queue(ctx, "deploy form", work, tell):
            ack()
        else:
            ack(response_action="errors", errors={"service": BUSY})  # the form stays open, nothing lost


def tokens(values: Fields) -> list[tuple[str, str]]:
    """(field, the words the grammar reads for it), in command order; blank fields are left out."""
    percent = (values.get("percent") or "").replace(" ", "")
    reason = " ".join((values.get("reason") or "").split())
    pairs = [
        ("service", values.get("service") or ""),
        ("strategy", values.get("strategy") or ""),
        ("percent", percent if not percent or percent.endswith("%") else f"{percent}%"),
        ("image", f"image={values['image']}" if values.get("image") else ""),
        ("reason", f"reason={quote_reason(reason)}" if reason else ""),
    ]
    return [(field, text) for field, text in pairs if text]


def read_form(values: Fields, catalog: Catalog) -> grammar.Deploy | dict[str, str]:
    """The Deploy the form asks for, or {block id: problem}: the first field whose words break the command."""
    if not values.get("service"):
        return {"service": "Pick a service."}
    if len((values.get("image") or "").split()) > 1:
        # The grammar would read only the first word and blame it; say what is wrong with the field as typed.
        return {"image": "An image has no spaces: a tag like `:1.3.0`, a digest, or a full image URI."}
    text = ""
    command: grammar.Command | None = None
    for field, words in tokens(values):
        text = f"{text} {words}".strip()
        try:
            command = grammar.parse(text, catalog)
        except grammar.GrammarError as exc:
            return {field: html.unescape(exc.problem)}  # a modal's error is plain text, not mrkdwn
    if not isinstance(command, grammar.Deploy):
        return {"service": "Pick a service from the list."}  # e.g. a forged `status` as the service
    return command


def metadata_channel(raw: object) -> str | None:
    """The channel the form was opened from, as stored by the command handler."""
    try:
        data = json.loads(raw) if isinstance(raw, str) and raw else {}
    except ValueError:
        return None
    return channel_from(data.get("channel")) if isinstance(data, dict) else None
