"""The outbox drainer: sends queued Slack messages in order, within Slack's rate limits, never twice.

A row's life: PENDING → (claimed in a short transaction) SENDING → Slack call outside any transaction → SENT or
FAILED, or back to PENDING with a later `not_before`. While a row is SENDING its `not_before` is a lease: once
that passes, the message may or may not be in Slack (the sender died, or the call failed ambiguously), so the next
attempt first looks for it by the idempotency key carried in the message's metadata.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import leases, pace
from bot.db.renewal import MAX_HOLD, renewing
from bot.db.sessions import is_postgres, transaction
from bot.domain import backoff
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxKind, RenderKind
from bot.domain.outbox import method_pace_key, post_pace_key
from bot.logs import get_logger
from bot.slack.blocks import Message
from bot.slack.claims import (
    COALESCED,
    FAILED,
    FAILED_STATE,
    METHODS,
    PENDING,
    SENDING,
    SENT_STATE,
    Claim,
)
from bot.slack.clients import without_retries
from bot.slack.due import due_query
from bot.slack.health import SlackHealth
from bot.slack.lanes import Dispatch, Laning
from bot.slack.lookup import SlackLookup
from models import Deployment, Outbox
from models.base import utcnow

log = get_logger(__name__)

# A post's window to be called in, from the pass's start: the claim, the render and the lanes' queue come first
# (0.5-1 s at a 20 k-row backlog on a loaded machine: with a window of one interval, as before, most posts of a pass
# were handed back). Its channel's turn is reserved for the window + the interval, then set from Slack's answer.
TURN_WINDOW = timedelta(seconds=5)
DEFAULT_LANES = 8  # threads sending to different channels at once (DEPLOYBOT_SLACK_LANES)
MIN_GRACE = timedelta(seconds=1)  # the shortest lease on a claimed row (DEPLOYBOT_LEASE_SECONDS)


class OutboxSender(Laning):
    """Drains the outbox into Slack; several replicas may drain the same database at once."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        client: WebClient,
        catalog: Catalog,
        *,
        clock: Callable[[], datetime] = utcnow,
        owner: str,
        batch: int = 100,
        max_attempts: int = backoff.MAX_ATTEMPTS,
        grace: timedelta = timedelta(seconds=60),
        post_interval: float = 1.0,
        update_interval: float = 1.0,
        lookup_margin: timedelta = timedelta(minutes=5),
        backoff_cap: float = backoff.CAP,
        jitter: Callable[[], float] = random.random,  # a fraction in [0, 1) of backoff.JITTER; tests pass 0
        health: SlackHealth | None = None,
        bot_hold: timedelta = timedelta(seconds=60),
        lanes: int = DEFAULT_LANES,
    ) -> None:
        # Never sleep on the drain thread, never re-post blindly: this sender handles 429 and errors itself.
        client = without_retries(client)
        if grace < MIN_GRACE:
            raise ValueError(f"grace ({grace}) must be at least {MIN_GRACE} (it is renewed every third of it)")
        if lanes < 1:
            raise ValueError(f"lanes ({lanes}) must be at least 1")
        self.sessions, self.client, self.catalog, self.clock, self.owner = sessions, client, catalog, clock, owner
        self.batch, self.max_attempts, self.grace, self.margin = batch, max_attempts, grace, lookup_margin
        self.post_interval = timedelta(seconds=post_interval)
        self.update_interval = timedelta(seconds=update_interval)
        self.backoff_cap, self.jitter = backoff_cap, jitter
        self.health = health or SlackHealth()
        self.bot_hold = bot_hold
        self.lookup = SlackLookup(client, lookup_margin)
        self._next_post: dict[str, datetime] = {}  # channel → earliest next chat.postMessage from this process
        self._next_update: dict[int, datetime] = {}  # deployment → earliest next chat.update of its root
        self._method_hold: dict[str, datetime] = {}  # method → after a 429 on a per-method limit
        self._liveness: leases.Liveness | None = None
        self._rendered: dict[int, Message | Exception | None] = {}  # this pass's messages, by outbox row id
        self._frozen: datetime | None = None  # a pass given its `now` (tests) keeps it throughout
        self.lanes = lanes
        # Idle between passes; its threads end when the sender is collected (the executor's own weak reference).
        self._pool = ThreadPoolExecutor(max_workers=lanes, thread_name_prefix=f"sender-lane-{owner}")

    def drain_once(self, now: datetime | None = None, budget_seconds: float = 5.0) -> int:
        """Send what is due; return how many messages Slack accepted. Never sleeps."""
        self._frozen = now
        now = now or self.clock()
        claiming = time.monotonic()
        claims = self._claim(now)
        started = time.monotonic()
        # The leases are renewed while the pass runs (one attempt can make many slow Slack calls: conversations.info,
        # history pages, the post, a plain-text fallback), for at most MAX_HOLD: a call must start well inside that,
        # or a pass could outlive it and be recovered (and re-posted). The budget counts sending time only.
        held_left = MAX_HOLD.total_seconds() - 2 * self.client.timeout - (started - claiming)
        dispatch = Dispatch(claims)
        try:
            with renewing(self._renew, [c.id for c in claims], self.grace, "outbox claims"):
                return self._send_all(claims, now, started, min(budget_seconds, held_left), dispatch)
        finally:
            self._release(dispatch.back, now)  # only claims never attempted, on every way out of the pass

    def _renew(self, ids: Sequence[int]) -> None:
        """Extend the leases of the rows of `ids` still SENDING under this sender (a recorded row has no owner)."""
        with transaction(self.sessions) as session:
            held = select(Outbox.id).where(
                Outbox.id.in_(ids), Outbox.state == SENDING, Outbox.lease_owner == self.owner
            )
            if is_postgres(session):
                held = held.with_for_update(skip_locked=True)  # a row being recorded now is skipped, not waited for
            session.execute(
                update(Outbox)
                .where(Outbox.id.in_(held), Outbox.lease_owner == self.owner)
                .values(not_before=self._at() + self.grace)
                .execution_options(synchronize_session=False)
            )

    # Claiming ----------------------------------------------------------------------------------------------------
    def _dead_owners(self, session: Session, now: datetime) -> set[str]:
        """Senders whose process is gone while their rows are still leased: those rows are free now."""
        owners = session.scalars(
            select(Outbox.lease_owner).distinct().where(Outbox.state == SENDING, Outbox.not_before > now)
        )
        # Held for as long as this object lives (the registry keeps it only while someone does).
        self._liveness = self._liveness or leases.liveness(self.sessions, self.owner)
        return self._liveness.dead(session, owners)

    def _claim(self, now: datetime) -> list[Claim]:
        """Mark the rows this pass will send SENDING (with a lease), fold older root edits into the newest."""
        with transaction(self.sessions) as session:
            rows = list(session.scalars(due_query(session, now, self._dead_owners(session, now), self.batch)))
            deps = self._deployments(session, rows)
            self._read_holds(session, now)
            newest_update = {r.deployment_id: r.id for r in rows if r.kind is OutboxKind.UPDATE_ROOT}
            chosen: list[tuple[Outbox, Claim]] = []
            channels: set[str] = set()
            for row in rows:
                dep = deps.get(row.deployment_id or 0, (None, None))
                if row.kind is OutboxKind.UPDATE_ROOT and row.id != newest_update[row.deployment_id]:
                    _coalesce(row, f"coalesced into #{newest_update[row.deployment_id]}", dep[0], now)
                    continue
                claim = self._settling(_claim_of(row, *dep), row, now)
                if (
                    claim.kind is not OutboxKind.EPHEMERAL
                    and (row.in_thread or claim.kind is OutboxKind.UPDATE_ROOT)
                    and claim.thread_ts is None
                ):
                    _give_up(row, "the deployment's root message could not be posted, so it has no thread")
                elif self._may_send(claim, channels, now):
                    chosen.append((row, claim))
            claims = self._take_turns(session, chosen, now)
        if claims:
            log.debug("sender %s claimed %d outbox rows", self.owner, len(claims))
        return claims

    def _settling(self, claim: Claim, row: Outbox, now: datetime) -> Claim:
        """A post its last sender never recorded may still be on its way into Slack: not posted again until the
        call it may have been making has ended."""
        if claim.kind is not OutboxKind.POST or not claim.in_doubt or row.lease_owner is None:
            return claim  # recorded in doubt by a sender that saw its call end (or never claimed): look, then post
        # That sender stopped by now (it died) or by its lease's end (renewals stopped: dead, or stuck), whichever
        # came first, and any call of its gave up within one client timeout after. Slack goes on storing a post
        # whose caller has gone, so until then a look-up that misses it proves nothing.
        until = min(now, row.not_before) + timedelta(seconds=self.client.timeout)
        return replace(claim, settle_until=until) if until > now else claim

    def _take_turns(self, session: Session, chosen: Sequence[tuple[Outbox, Claim]], now: datetime) -> list[Claim]:
        """Mark the chosen rows SENDING; a post only if its channel's turn is free in the database (any replica)."""
        send_by = now + max(self.post_interval, TURN_WINDOW) if self.post_interval else None
        turns = {post_pace_key(c.channel): c for _, c in chosen if c.kind is OutboxKind.POST}
        # Held for the window to call in plus the interval after it; the record puts it at the call's time + interval.
        until = (send_by or now) + self.post_interval
        taken = pace.reserve(session, dict.fromkeys(turns, until), now) if send_by else set(turns)
        claims: list[Claim] = []
        for row, claim in chosen:
            if claim.kind is OutboxKind.POST and post_pace_key(claim.channel) not in taken:
                continue  # another replica posts in this channel now
            row.state, row.attempts, row.not_before = SENDING, row.attempts + 1, now + self.grace
            row.lease_owner = self.owner
            by = send_by if claim.kind is OutboxKind.POST else None
            claims.append(replace(claim, attempts=row.attempts, send_by=by))
        return claims

    def _deployments(self, session: Session, rows: Sequence[Outbox]) -> dict[int, tuple[str | None, str]]:
        """(root_ts, channel) of the deployments the rows belong to."""
        ids = {r.deployment_id for r in rows if r.deployment_id is not None}
        if not ids:
            return {}
        stmt = select(Deployment.id, Deployment.root_ts, Deployment.channel_id).where(Deployment.id.in_(ids))
        return {dep_id: (root_ts, channel) for dep_id, root_ts, channel in session.execute(stmt)}

    def _read_holds(self, session: Session, now: datetime) -> None:
        """Methods another replica (or this one) was told to hold by a 429's Retry-After."""
        keys = {method_pace_key(m): m for m in METHODS.values()}
        for key, until in pace.held(session, keys, now).items():
            self._method_hold[keys[key]] = max(until, self._method_hold.get(keys[key], until))

    def _may_send(self, claim: Claim, channels: set[str], now: datetime) -> bool:
        """Pace the calls: one post per channel per pass and per interval, root edits at most every interval."""
        method = METHODS[claim.kind]
        if self._method_hold.get(method, now) > now:
            return False
        if claim.kind is OutboxKind.UPDATE_ROOT:
            return self._next_update.get(claim.deployment_id or 0, now) <= now
        if claim.kind is OutboxKind.EPHEMERAL:
            return True
        if claim.channel in channels or self._next_post.get(claim.channel, now) > now:
            return False
        channels.add(claim.channel)
        return True

    def _release(self, claims: Sequence[Claim], now: datetime) -> None:
        """Hand back claims this pass has no time left for (a row in doubt stays in doubt).

        Only rows still under this claim: one another replica took over (this lease passed) is its, not ours.
        """
        if not claims:
            return
        with transaction(self.sessions) as session:
            released = []
            for claim in claims:
                mine = (Outbox.lease_owner == self.owner, Outbox.attempts == claim.attempts)
                result = session.execute(
                    update(Outbox)
                    .where(Outbox.id == claim.id, Outbox.state == SENDING, *mine)
                    .values(
                        state=SENDING if claim.in_doubt else PENDING,
                        attempts=claim.attempts - 1,
                        not_before=now,
                        lease_owner=None,
                    )
                )
                if result.rowcount:  # type: ignore[attr-defined]
                    released.append(claim)
            turns = {post_pace_key(c.channel): self._at() for c in released if c.kind is OutboxKind.POST}
            if self.post_interval:
                pace.set_times(session, turns)  # the turns these claims reserved: free again


def _claim_of(row: Outbox, root_ts: str | None, dep_channel: str | None) -> Claim:
    """Where a row's call goes: replies and root edits follow the root message's channel."""
    follows_root = row.in_thread or row.kind is OutboxKind.UPDATE_ROOT
    channel = (dep_channel or row.channel_id) if follows_root else row.channel_id
    thread_ts = root_ts if row.kind is OutboxKind.UPDATE_ROOT else row.thread_ts or (root_ts if row.in_thread else None)
    render_kind = (row.payload or {}).get("render")
    return Claim(
        id=row.id,
        key=row.idempotency_key,
        kind=row.kind,
        channel=channel,
        thread_ts=thread_ts,
        user_id=row.user_id,
        deployment_id=row.deployment_id,
        is_root=row.kind is OutboxKind.POST and not row.in_thread and render_kind == RenderKind.ROOT,
        attempts=row.attempts,
        created_at=row.created_at,
        in_doubt=row.state is SENDING,
        lookups=row.lookups,
        render_kind=render_kind,
        root_ts=root_ts,
        root_channel=dep_channel,
    )


def _coalesce(row: Outbox, note: str, root_ts: str | None, now: datetime) -> None:
    """An older root edit the newest one covers: it renders the current state anyway."""
    row.state, row.last_error, row.slack_ts, row.sent_at = SENT_STATE, note, root_ts, now
    COALESCED.inc()


def _give_up(row: Outbox, reason: str) -> None:
    """Fail a row that can never be sent."""
    row.state, row.last_error = FAILED_STATE, reason
    FAILED.labels(METHODS[row.kind]).inc()
    log.error("outbox %s failed for good: %s", row.idempotency_key, reason)
