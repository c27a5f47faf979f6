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
from bot.slack.retry import with_retries
from bot.slack.workers import WorkPool
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
    # The listeners' slow parts; `notices` carries the "busy" answers when `work` is full.
    work: WorkPool = field(default_factory=WorkPool)
    notices: WorkPool = field(default_factory=lambda: WorkPool("notices", workers=1, capacity=1000))

    def stop(self) -> None:
        """Finish (or abandon, telling the person) queued requests, then close the database."""
        self.work.shutdown()
        self.notices.shutdown(timeout=2)
        self.db.dispose()


def slack_membership(
    client: WebClient, clock: Callable[[], datetime] = utcnow, health: SlackHealth | None = None
) -> CachedMembership:
    """User-group membership from `usergroups.users.list` (tier 2: cached), retried within bounds on a 429/5xx."""

    def fetch(group_id: str) -> list[str]:
        try:
            resp = with_retries(
                lambda: client.usergroups_users_list(usergroup=group_id), "usergroups.users.list", health=health
            )
        except SlackApiError as exc:
            if exc.response.get("error") in ("no_such_subteam", "subteam_not_found"):
                return []
            raise
        return list(resp.get("users") or [])

    return CachedMembership(fetch, MEMBERSHIP_TTL, clock)
