"""Everything the Slack layer needs, built once per process and handed to `build_app` and the jobs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine as DbEngine
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.domain.catalog.loader import Catalog
from bot.domain.policy import CachedMembership
from bot.engine.usecases import UseCases
from bot.slack.health import SlackHealth
from models import utcnow

MEMBERSHIP_TTL = timedelta(minutes=5)


@dataclass
class BotContext:
    """The process's shared objects: settings, catalog, database, the engine and a Slack Web API client."""

    settings: Settings
    catalog: Catalog
    db: DbEngine
    sessions: sessionmaker[Session]
    client: WebClient  # no sleeping retry handlers: nothing on a Slack ack path may wait on a 429
    usecases: UseCases
    membership: CachedMembership
    clock: Callable[[], datetime] = utcnow
    health: SlackHealth = field(default_factory=SlackHealth)  # a bot-level Slack error fails /readyz


def slack_membership(client: WebClient, clock: Callable[[], datetime] = utcnow) -> CachedMembership:
    """User-group membership from `usergroups.users.list`, cached (tier 2 method: call it rarely)."""

    def fetch(group_id: str) -> list[str]:
        try:
            return list(client.usergroups_users_list(usergroup=group_id).get("users") or [])
        except SlackApiError as exc:
            if exc.response.get("error") in ("no_such_subteam", "subteam_not_found"):
                return []
            raise

    return CachedMembership(fetch, MEMBERSHIP_TTL, clock)
