"""Approve / Roll back buttons (root message and App Home): ack, check the button, decide once, answer the clicker."""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.domain.enums import ActorSource, DecisionKind
from bot.domain.readmodels import DeploymentView
from bot.engine.answers import Actor, Answer, mention, refused, slack_time
from bot.logs import get_logger
from bot.slack.blocks import APPROVE_ACTION, ROLLBACK_ACTION, Message, parse_button_value
from bot.slack.context import BotContext
from handlers.events import publish_home
from handlers.replies import Respond, answer_message, channel_from, reply, trusted
from handlers.work import busy, queue

log = get_logger(__name__)
BLOCK_ID = re.compile(r"^dep-([1-9][0-9]{0,17})-v[0-9]{1,18}$")
TAMPERED = (
    "That button doesn't look like one of mine (it may be damaged or edited), so I did nothing. "
    "`/deploy status` shows what is running."
)


def register(app: App, ctx: BotContext) -> None:
    """Listen for the two decision buttons."""

    @app.action(APPROVE_ACTION)
    def approve_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond | None
    ) -> None:
        clicked(ctx, ack, body, action, client, respond, approve=True)

    @app.action(ROLLBACK_ACTION)
    def rollback_clicked(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond | None
    ) -> None:
        clicked(ctx, ack, body, action, client, respond, approve=False)


def clicked(
    ctx: BotContext,
    ack: Ack,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond | None,
    *,
    approve: bool,
) -> None:
    """Ack at once; the decision runs on the worker pool (or the person hears "busy, try again")."""
    ack()
    usable = trusted(ctx, respond, body.get("response_url"))
    user = str(body["user"]["id"])
    channel = channel_from((body.get("channel") or {}).get("id"))

    def tell(message: Message) -> None:
        reply(usable, client, message, user=user, channel=channel)

    name = "approve" if approve else "rollback"
    if not queue(ctx, name, lambda: decide(ctx, body, action, client, usable, approve=approve), tell):
        busy(ctx, name, tell)


def button_target(action: dict[str, Any]) -> tuple[int, str | None] | None:
    """(deployment id, hook id) when the value parses and agrees with its block's `dep-{id}-v{n}` id."""
    try:
        dep_id, hook = parse_button_value(action.get("value"))
    except ValueError:
        return None
    block = BLOCK_ID.match(str(action.get("block_id") or ""))
    return (dep_id, hook) if block is not None and int(block.group(1)) == dep_id else None


def decide(
    ctx: BotContext,
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond | None,
    *,
    approve: bool,
) -> None:
    """Run the decision and tell the clicker how it went; success also shows in the re-rendered message."""
    user = str(body["user"]["id"])
    in_home = (body.get("container") or {}).get("type") == "view"
    channel = channel_from((body.get("channel") or {}).get("id"))
    # A Slack failure on the approver-group lookup comes back as a recorded refusal saying "try again in a minute".
    answer = _decision(ctx, body, action, user, channel, in_home, approve)
    # `respond` is None when the payload has no (trusted) response_url, e.g. in the Home tab.
    reply(respond, client, answer_message(answer, ctx.clock()), user=user, channel=channel)
    if in_home:
        publish_home(ctx, client, user)  # the Home tab is not re-rendered by the sender


def _decision(
    ctx: BotContext,
    body: dict[str, Any],
    action: dict[str, Any],
    user: str,
    channel: str | None,
    in_home: bool,
    approve: bool,
) -> Answer:
    target = button_target(action)
    if target is None:
        log.warning("refused a tampered %s button from %s: %r", action.get("action_id"), user, action.get("value"))
        return refused(TAMPERED)
    dep_id, hook = target
    view = ctx.usecases.deployments.view(dep_id)
    if view is None:
        return refused(f"I can't find deployment #{dep_id}, so I did nothing. `/deploy status` lists what is running.")
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    actor = Actor(
        user_id=user,
        channel_id=channel or view.channel_id,
        team_id=team,
        source=ActorSource.APP_HOME if in_home else ActorSource.BUTTON,
    )
    if approve:
        return ctx.usecases.decisions.approve(actor, dep_id, hook)
    if not view.is_active:
        # A stale Roll back button must not become a redeploy of the previous version: that is a command's job.
        return _finished(view, hook)
    return ctx.usecases.decisions.rollback(actor, dep_id, hook, None)


def _finished(view: DeploymentView, hook: str | None) -> Answer:
    """Why a Roll back button on a finished deployment did nothing."""
    earlier = view.decision_for(hook) if hook else None
    if earlier is not None:
        verb = "approved" if earlier.kind is DecisionKind.APPROVE else "rolled back"
        return refused(
            f"Already {verb} by {mention(earlier.user_id)} at {slack_time(earlier.decided_at)}.", deployment_id=view.id
        )
    status = view.status.value.lower().replace("_", " ")
    return refused(
        f"Deployment #{view.id} already ended ({status}); this button did nothing. To undo it, type "
        f"`/deploy rollback {view.service_key}`.",
        deployment_id=view.id,
    )
