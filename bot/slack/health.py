"""Whether Slack accepts the bot at all: a bot-level error (revoked token, missing scope…) fails /readyz."""

from __future__ import annotations

import threading
from datetime import datetime

from prometheus_client import Counter, Gauge

from bot.logs import get_logger
from models import utcnow

log = get_logger(__name__)
BOT_ERRORS = Counter(
    "deploybot_slack_bot_errors_total", "Slack answers that concern the whole bot (token, scopes)", ["error"]
)
BOT_BLOCKED = Gauge("deploybot_slack_bot_blocked", "1 while Slack refuses the bot token or installation")


class SlackHealth:
    """The last bot-level Slack error, until a call succeeds again (shared by listeners and the sender)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.error: str | None = None
        self.method: str | None = None
        self.since: datetime | None = None

    def bot_error(self, code: str, method: str) -> None:
        """Record a bot-level error; the first of a run is logged loudly, repeats only counted."""
        BOT_ERRORS.labels(code).inc()
        with self._lock:
            first = self.error != code
            self.error, self.method = code, method
            self.since = self.since if not first else utcnow()
        BOT_BLOCKED.set(1)
        if first:
            log.critical(
                "SLACK REFUSES THE BOT: %s on %s. Nothing reaches Slack until a person fixes the token or the app's "
                "scopes (`deploybot check` lists them); queued messages wait, /readyz fails meanwhile.",
                code,
                method,
            )

    def ok(self) -> None:
        """A call went through: the bot is accepted again."""
        with self._lock:
            was, self.error, self.method, self.since = self.error, None, None, None
        if was is not None:
            BOT_BLOCKED.set(0)
            log.warning("Slack accepts the bot again (was: %s)", was)

    @property
    def blocked(self) -> str | None:
        """The bot-level error in force, or None."""
        with self._lock:
            return self.error
