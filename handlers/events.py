"""Events API: `app_home_opened` publishes the App Home (active deployments with buttons, the viewer's recent ones)."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.logs import get_logger
from bot.slack.blocks import app_home
from bot.slack.context import BotContext

log = get_logger(__name__)
RECENT = 10


def register(app: App, ctx: BotContext) -> None:
    """Listen for the Home tab being opened."""

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient, request: BoltRequest) -> None:
        # Events are acked by Bolt before this runs. A retried delivery publishes again: views.publish replaces
        # the whole tab, so doing it twice shows the same thing (and the newest state).
        if event.get("tab", "home") != "home":
            return
        retry = next(iter(request.headers.get("x-slack-retry-num") or []), None)
        if retry:
            log.info("app_home_opened retry %s for %s: publishing again (idempotent)", retry, event.get("user"))
        publish_home(ctx, client, str(event["user"]))


def publish_home(ctx: BotContext, client: WebClient, user: str) -> None:
    """Render and publish one person's Home tab."""
    deployments = ctx.usecases.deployments
    view = app_home(deployments.active(), deployments.history_for_user(user, RECENT), ctx.clock(), ctx.catalog.services)
    try:
        client.views_publish(user_id=user, view=view)
    except SlackClientError as exc:
        log.warning("views.publish for %s failed: %s", user, exc)
