"""Events API: `app_home_opened` publishes the App Home; user-group changes invalidate cached membership."""

from __future__ import annotations

from typing import Any

from slack_bolt import App, BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.logs import get_logger
from bot.slack.blocks import app_home
from bot.slack.context import BotContext
from bot.slack.retry import with_retries

log = get_logger(__name__)
RECENT = 10


def retry_number(request: BoltRequest) -> int:
    """Slack's redelivery count; Socket Mode sends `0` on a first delivery (bolt ≥ 1.29), HTTP sends nothing."""
    raw = next(iter(request.headers.get("x-slack-retry-num") or []), None)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def register(app: App, ctx: BotContext) -> None:
    """Listen for the Home tab being opened and for user groups changing."""

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient, request: BoltRequest) -> None:
        # Events are acked by Bolt when this returns. A retried delivery publishes again: views.publish replaces
        # the whole tab, so doing it twice shows the same thing (and the newest state).
        if event.get("tab", "home") != "home" or not isinstance(event.get("user"), str):
            return
        retry = retry_number(request)
        if retry > 0:
            log.info("app_home_opened retry %s for %s: publishing again (idempotent)", retry, event["user"])
        user = str(event["user"])
        if not ctx.work.submit("app_home_opened", lambda: publish_home(ctx, client, user)):
            log.warning("busy: the Home tab of %s is not refreshed this time", user)

    @app.event("subteam_members_changed")
    def members_changed(event: dict[str, Any]) -> None:
        # Someone joined or left a user group: forget it, so a removed approver loses the right now, not in 5 min.
        forget(ctx, event.get("subteam_id"))

    @app.event("subteam_updated")
    def group_updated(event: dict[str, Any]) -> None:
        subteam = event.get("subteam")
        forget(ctx, subteam.get("id") if isinstance(subteam, dict) else None)


def forget(ctx: BotContext, group_id: object) -> None:
    """Drop a user group from the membership cache (every group, when the event does not say which)."""
    ctx.membership.invalidate(group_id if isinstance(group_id, str) and group_id else None)
    log.info("user group %s changed: its cached membership is forgotten", group_id or "(all)")


def publish_home(ctx: BotContext, client: WebClient, user: str) -> None:
    """Render and publish one person's Home tab."""
    deployments = ctx.usecases.deployments
    view = app_home(deployments.active(), deployments.history_for_user(user, RECENT), ctx.clock(), ctx.catalog.services)
    try:
        with_retries(lambda: client.views_publish(user_id=user, view=view), "views.publish", health=ctx.health)
    except (SlackClientError, OSError) as exc:
        log.warning("views.publish for %s failed: %s", user, exc)
