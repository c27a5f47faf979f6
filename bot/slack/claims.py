"""What the outbox sender passes between its parts: a claimed row, the outcome of an attempt, the sender's state."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import Counter
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.db import leases
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxKind, OutboxState
from bot.logs import bound
from bot.slack.blocks import Message
from bot.slack.health import SlackHealth
from bot.slack.lookup import SlackLookup

SENT = Counter("deploybot_slack_sent", "Outbox messages Slack accepted", ["method"])
FAILED = Counter("deploybot_slack_failed", "Outbox messages given up on", ["method"])
RATE_LIMITED = Counter("deploybot_slack_rate_limited", "429 answers from Slack to the sender", ["method"])
RECOVERED = Counter("deploybot_slack_recovered", "Messages found already posted after an interrupted send")
COALESCED = Counter("deploybot_slack_coalesced", "Root-message edits folded into a newer one")


PENDING, SENDING, SENT_STATE, FAILED_STATE = (
    OutboxState.PENDING,
    OutboxState.SENDING,
    OutboxState.SENT,
    OutboxState.FAILED,
)
METHODS = {
    OutboxKind.POST: "chat.postMessage",
    OutboxKind.UPDATE_ROOT: "chat.update",
    OutboxKind.EPHEMERAL: "chat.postEphemeral",
}


@dataclass(frozen=True)
class Claim:
    """A row this sender marked SENDING, with everything the Slack call needs."""

    id: int
    key: str
    kind: OutboxKind
    channel: str
    thread_ts: str | None  # the thread a POST replies in; for UPDATE_ROOT, the root message to edit
    user_id: str | None
    deployment_id: int | None
    is_root: bool
    attempts: int
    created_at: datetime
    in_doubt: bool  # found SENDING: an earlier attempt may already have posted it
    render_kind: str | None
    root_ts: str | None
    root_channel: str | None
    send_by: datetime | None = None  # a post's turn in its channel, reserved for every replica: call before this
    lookups: int = 0  # failed look-ups in a row while in doubt (backed off on their own, not send attempts)
    settle_until: datetime | None = None  # a stopped sender's post in doubt: not posted again before this


@dataclass(frozen=True)
class Outcome:
    """What became of one attempt."""

    state: OutboxState
    ts: str | None = None
    channel: str | None = None
    error: str | None = None
    retry_at: datetime | None = None
    counts: bool = True  # False: a 429 is Slack's pacing, not a failed attempt
    rate_limited: bool = False
    bot_level: bool = False  # Slack refuses the bot itself: stop this pass, hold everything
    lookups: int = 0  # the row's failed look-ups in a row after this attempt (0: it looked, or had no need)


class SenderState:
    """The attributes the sender's parts share (set by `OutboxSender.__init__`)."""

    sessions: sessionmaker[Session]
    client: WebClient
    catalog: Catalog
    clock: Callable[[], datetime]
    owner: str
    batch: int
    max_attempts: int
    grace: timedelta
    margin: timedelta
    post_interval: timedelta
    update_interval: timedelta
    backoff_cap: float
    jitter: Callable[[], float]
    health: SlackHealth
    bot_hold: timedelta
    lookup: SlackLookup
    _next_post: dict[str, datetime]
    _next_update: dict[int, datetime]
    _method_hold: dict[str, datetime]
    _liveness: leases.Liveness | None
    _rendered: dict[int, Message | Exception | None]
    _frozen: datetime | None

    def _at(self) -> datetime:
        """The time of a call or of Slack's answer: the clock's, later in the pass than its start."""
        return self._frozen or self.clock()


def about(claim: Claim) -> AbstractContextManager[None]:
    """The log context of one claim: what every line about it carries."""
    return bound(deployment_id=claim.deployment_id, channel=claim.channel, outbox_key=claim.key)
