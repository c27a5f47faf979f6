"""The outbox drainer: sends queued Slack messages in order, within Slack's rate limits, never twice.

A row's life: PENDING → (claimed in a short transaction) SENDING → Slack call outside any transaction → SENT or
FAILED, or back to PENDING with a later `not_before`. While a row is SENDING its `not_before` is a lease: once
that passes, the message may or may not be in Slack (the sender died, or the call failed ambiguously), so the next
attempt first looks for it by the idempotency key carried in the message's metadata.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Counter
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db import leases, pace, store
from bot.db.sessions import transaction
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import OutboxKind, OutboxState, RenderKind, SlackFailureKind
from bot.domain.outbox import method_pace_key, post_pace_key
from bot.logs import bound, get_logger
from bot.slack.blocks import Message, plain_fallback
from bot.slack.clients import without_retries
from bot.slack.due import due_query
from bot.slack.errors import SlackFailure, classify
from bot.slack.health import SlackHealth
from bot.slack.lookup import METADATA_EVENT, SlackLookup
from bot.slack.render import Overtaken, render, render_many
from models import Deployment, Outbox
from models.base import utcnow

log = get_logger(__name__)

SENT = Counter("deploybot_slack_sent", "Outbox messages Slack accepted", ["method"])
FAILED = Counter("deploybot_slack_failed", "Outbox messages given up on", ["method"])
RATE_LIMITED = Counter("deploybot_slack_rate_limited", "429 answers from Slack to the sender", ["method"])
RECOVERED = Counter("deploybot_slack_recovered", "Messages found already posted after an interrupted send")
RECORD_EVERY = 20  # outcomes stored per transaction (one commit per message cost more than the rest of a send)
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


class OutboxSender:
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
        max_attempts: int = 8,
        grace: timedelta = timedelta(seconds=60),
        post_interval: float = 1.0,
        update_interval: float = 1.0,
        lookup_margin: timedelta = timedelta(minutes=5),
        backoff_cap: float = 300.0,
        health: SlackHealth | None = None,
        bot_hold: timedelta = timedelta(seconds=60),
    ) -> None:
        # Never sleep on the drain thread, never re-post blindly: this sender handles 429 and errors itself.
        client = without_retries(client)
        if grace.total_seconds() <= 3 * client.timeout:
            # The lease must outlast a call started late in a pass, or a slow post could be recovered and re-sent.
            raise ValueError(f"grace ({grace}) must exceed three client timeouts ({client.timeout} s each)")
        self.sessions, self.client, self.catalog, self.clock, self.owner = sessions, client, catalog, clock, owner
        self.batch, self.max_attempts, self.grace, self.margin = batch, max_attempts, grace, lookup_margin
        self.post_interval = timedelta(seconds=post_interval)
        self.update_interval = timedelta(seconds=update_interval)
        self.backoff_cap = backoff_cap
        self.health = health or SlackHealth()
        self.bot_hold = bot_hold
        self.lookup = SlackLookup(client, lookup_margin)
        self._next_post: dict[str, datetime] = {}  # channel → earliest next chat.postMessage from this process
        self._next_update: dict[int, datetime] = {}  # deployment → earliest next chat.update of its root
        self._method_hold: dict[str, datetime] = {}  # method → after a 429 on a per-method limit
        self._liveness: leases.Liveness | None = None
        self._rendered: dict[int, Message | Exception | None] = {}  # this pass's messages, by outbox row id
        self._frozen: datetime | None = None  # a pass given its `now` (tests) keeps it throughout

    def _at(self) -> datetime:
        """The time of a call or of Slack's answer: the clock's, later in the pass than its start."""
        return self._frozen or self.clock()

    def drain_once(self, now: datetime | None = None, budget_seconds: float = 5.0) -> int:
        """Send what is due; return how many messages Slack accepted. Never sleeps."""
        self._frozen = now
        now = now or self.clock()
        claiming, sent = time.monotonic(), 0
        claims = self._claim(now)
        started = time.monotonic()
        # A call must start well inside the lease (which began at the claim), or a slow batch could outlive it and
        # be recovered (and re-posted); the budget counts sending time only, so a slow claim still makes progress.
        lease_left = self.grace.total_seconds() - 2 * self.client.timeout - (started - claiming)
        budget = min(budget_seconds, lease_left)
        self._rendered = self._render_all(claims, now)
        done: list[tuple[Claim, Outcome]] = []
        back: list[Claim] = []  # handed back at the end of the pass, untouched
        for i, claim in enumerate(claims):
            if time.monotonic() - started > budget:
                back += claims[i:]
                break
            if self._held(claim) or (claim.send_by is not None and self._at() > claim.send_by):
                back.append(claim)  # a 429 earlier in this pass, or too late for the channel's turn: next pass
                continue
            with _about(claim):
                outcome = self._attempt(claim, now)
            done.append((claim, outcome))
            self._hold_here(claim, outcome)
            sent += outcome.state is SENT_STATE and outcome.ts is not None
            if outcome.bot_level:
                # Every other call would fail the same way: hand the rest back untouched, probe again later.
                back += claims[i + 1 :]
                break
            if len(done) >= RECORD_EVERY or outcome.rate_limited:
                self._record(done, now)  # a hold is shared with other replicas at once
                done = []
        self._record(done, now)
        self._release(back, now)
        return sent

    def _held(self, claim: Claim) -> bool:
        """Slack asked this process to hold the claim's method (a 429 earlier in this pass)."""
        return self._method_hold.get(METHODS[claim.kind], self._at()) > self._at()

    def _hold_here(self, claim: Claim, outcome: Outcome) -> None:
        """A 429's hold, in this process at once (the record shares it with the others)."""
        if outcome.rate_limited and outcome.retry_at is not None and claim.kind is not OutboxKind.POST:
            self._method_hold[METHODS[claim.kind]] = outcome.retry_at

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
                claim = _claim_of(row, *dep)
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

    def _take_turns(self, session: Session, chosen: Sequence[tuple[Outbox, Claim]], now: datetime) -> list[Claim]:
        """Mark the chosen rows SENDING; a post only if its channel's turn is free in the database (any replica)."""
        send_by = now + self.post_interval if self.post_interval else None
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
        """Hand back claims this pass has no time left for (a row in doubt stays in doubt)."""
        if not claims:
            return
        with transaction(self.sessions) as session:
            for claim in claims:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id == claim.id, Outbox.state == SENDING)
                    .values(
                        state=SENDING if claim.in_doubt else PENDING,
                        attempts=claim.attempts - 1,
                        not_before=now,
                        lease_owner=None,
                    )
                )
            turns = {post_pace_key(c.channel): self._at() for c in claims if c.kind is OutboxKind.POST}
            if self.post_interval:
                pace.set_times(session, turns)  # the turns these claims reserved: free again

    # Sending -----------------------------------------------------------------------------------------------------
    def _attempt(self, claim: Claim, now: datetime) -> Outcome:
        """Find a message an earlier attempt may have posted, else render and send it."""
        if claim.in_doubt and claim.kind is OutboxKind.POST:
            try:
                found = (
                    self.lookup.find_posted(claim.key, claim.channel, claim.thread_ts, claim.created_at)
                    if self.lookup.may_read(claim.channel)
                    else None
                )
            except Exception as exc:  # any failure leaves the question open: ask again later
                if classify(exc).kind in (SlackFailureKind.MESSAGE, SlackFailureKind.BOT):
                    self.lookup.refused(claim.channel)  # not allowed to read there: post again below
                    found = None
                else:
                    outcome = self._failure(claim, exc, now, in_doubt=True)
                    return replace(outcome, error=f"lookup failed, the message may be in Slack: {outcome.error}")
            if found is not None:
                RECOVERED.inc()
                log.info("outbox %s was already in Slack (ts %s): recorded, not posted again", claim.key, found)
                return Outcome(SENT_STATE, ts=found, channel=claim.channel, error="recovered: found by metadata")
        if claim.attempts > self.max_attempts:
            return Outcome(FAILED_STATE, error=f"gave up after {self.max_attempts} attempts")
        try:
            message = self._render(claim, now)
        except Overtaken as exc:  # a call to act that came too late: the root message and the history carry it
            log.info("outbox %s overtaken before its turn: %s", claim.key, exc)
            return Outcome(SENT_STATE, error=f"overtaken: {exc}")
        except Exception as exc:
            log.exception("outbox %s cannot be rendered", claim.key)
            return Outcome(FAILED_STATE, error=f"render: {exc}"[:1000])
        if message is None:
            return Outcome(SENT_STATE, error="nothing to say for this event")
        try:
            return self._sent(self._call(claim, message, now))
        except Exception as exc:  # classified below; the row is never lost
            failure = classify(exc)
            if failure.kind is SlackFailureKind.MESSAGE and failure.content and claim.kind is not OutboxKind.EPHEMERAL:
                return self._fallback(claim, message, failure, now)
            return self._failure(claim, exc, now, in_doubt=self._maybe_posted(claim, failure))

    def _fallback(self, claim: Claim, message: Message, failure: SlackFailure, now: datetime) -> Outcome:
        """Slack refused the blocks: send the same text as plain text, so the thread (and its root) still exist."""
        log.warning("outbox %s: Slack refused the message (%s); sending it as plain text", claim.key, failure.code)
        try:
            outcome = self._sent(self._call(claim, plain_fallback(message), now))
        except Exception as exc:
            return self._failure(claim, exc, now, in_doubt=self._maybe_posted(claim, classify(exc)))
        return replace(outcome, error=f"plain-text fallback after {failure.code}")

    @staticmethod
    def _maybe_posted(claim: Claim, failure: SlackFailure) -> bool:
        """A post that failed ambiguously (5xx, fatal_error, timeout) may be in Slack: look before re-posting."""
        return claim.kind is OutboxKind.POST and failure.kind is SlackFailureKind.LOOKUP

    def _sent(self, outcome: Outcome) -> Outcome:
        self.health.ok()
        return outcome

    def _render_all(self, claims: Sequence[Claim], now: datetime) -> dict[int, Message | Exception | None]:
        """Every claim's message, rendered from the database's state as the pass begins, in one read."""
        links = {
            c.id: self.lookup.permalink(c.root_channel, c.root_ts)
            for c in claims
            if c.render_kind == RenderKind.INCIDENT and c.root_ts and c.root_channel
        }
        with self.sessions() as session:
            rows = list(session.scalars(select(Outbox).where(Outbox.id.in_([c.id for c in claims])))) if claims else []
            return render_many(session, rows, self.catalog, now, links=links)

    def _render(self, claim: Claim, now: datetime) -> Message | None:
        """The message from the database's current state (the session closes before Slack is called)."""
        if claim.id in self._rendered:
            found = self._rendered[claim.id]
            if isinstance(found, Exception):
                raise found
            return found
        link = None
        if claim.render_kind == RenderKind.INCIDENT and claim.root_ts and claim.root_channel:
            link = self.lookup.permalink(claim.root_channel, claim.root_ts)
        with self.sessions() as session:
            row = session.get(Outbox, claim.id)
            if row is None:
                raise LookupError("the outbox row is gone")
            return render(session, row, self.catalog, now, permalink=lambda _c, _t: link)

    def _call(self, claim: Claim, message: Message, now: datetime) -> Outcome:
        """One Slack call for the claim."""
        blocks = message.blocks or None  # a text-only message goes without `blocks` (None is left out)
        if claim.kind is OutboxKind.UPDATE_ROOT:
            self._next_update[claim.deployment_id or 0] = self._at() + self.update_interval
            # Text without blocks would strip the blocks: always send both.
            resp = self.client.chat_update(channel=claim.channel, ts=claim.thread_ts or "", **message.as_kwargs())
            return Outcome(SENT_STATE, ts=resp["ts"], channel=resp.get("channel") or claim.channel)
        if claim.kind is OutboxKind.EPHEMERAL:
            resp = self.client.chat_postEphemeral(
                channel=claim.channel,
                user=claim.user_id or "",
                text=message.text,
                thread_ts=claim.thread_ts,
                blocks=blocks,
            )
            return Outcome(SENT_STATE, ts=resp["message_ts"], channel=claim.channel)
        self._next_post[claim.channel] = self._at() + self.post_interval
        resp = self.client.chat_postMessage(
            channel=claim.channel,
            text=message.text,
            thread_ts=claim.thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            blocks=blocks,
            metadata={"event_type": METADATA_EVENT, "event_payload": {"key": claim.key}},
        )
        return Outcome(SENT_STATE, ts=resp["ts"], channel=resp.get("channel") or claim.channel)

    def _failure(self, claim: Claim, exc: Exception, now: datetime, *, in_doubt: bool) -> Outcome:
        """Classify a failed call (bot/slack/errors.py): wait Retry-After, look up, fail the row, or hold it all."""
        failure = classify(exc)
        method = METHODS[claim.kind]
        doubt = in_doubt
        state = SENDING if doubt else PENDING
        answered = max(now, self._at())  # Retry-After counts from Slack's answer, not from the start of the pass
        if failure.retry_after is not None:
            RATE_LIMITED.labels(method).inc()
            retry_at = answered + timedelta(seconds=failure.retry_after)
            return Outcome(state, error="ratelimited", retry_at=retry_at, counts=False, rate_limited=True)
        if failure.kind is SlackFailureKind.BOT:
            self.health.bot_error(failure.code, method)
            # Not the message's fault: it waits (uncounted) until the token works again, never dropped.
            return Outcome(state, error=failure.code, retry_at=now + self.bot_hold, counts=False, bot_level=True)
        if failure.kind is SlackFailureKind.MESSAGE:
            return Outcome(FAILED_STATE, error=failure.code)
        if not isinstance(exc, (SlackClientError, OSError)):
            log.exception("unexpected error sending outbox %s", claim.key)
        reason = failure.code
        if claim.attempts >= self.max_attempts:
            maybe = " (it may have been posted)" if doubt else ""
            return Outcome(FAILED_STATE, error=f"{reason} after {claim.attempts} attempts{maybe}")
        delay = min(self.backoff_cap, 2.0 * 2 ** (claim.attempts - 1))
        return Outcome(state, error=reason, retry_at=now + timedelta(seconds=delay))

    # Recording ---------------------------------------------------------------------------------------------------
    def _record(self, done: Sequence[tuple[Claim, Outcome]], now: datetime) -> None:
        """Store outcomes in one transaction (a crash before it leaves them in doubt: looked up, never re-posted)."""
        if not done:
            return
        with transaction(self.sessions) as session:
            attempts = store.sending_attempts(session, [c.id for c, _ in done])
            kept = [(c, o) for c, o in done if attempts.get(c.id) == c.attempts]
            for claim, outcome in done:
                if attempts.get(claim.id) != claim.attempts:
                    with _about(claim):
                        log.warning("outbox %s was taken over; outcome %s dropped", claim.key, outcome.state)
            store.store_outcomes(session, [_values(c, o, now) for c, o in kept])
            posts = {c.channel for c, _ in kept if c.kind is OutboxKind.POST}
            if self.post_interval:
                # Each channel's next turn, for every replica, counts from when its call really went.
                pace.set_times(session, {post_pace_key(ch): self._next_post.get(ch, now) for ch in posts})
            edits = [c for c, o in kept if o.state is SENT_STATE and c.kind is OutboxKind.UPDATE_ROOT]
            store.fold_older_root_edits(
                session, [{"deployment_id": c.deployment_id, "id": c.id, "ts": c.thread_ts} for c in edits], now
            )
            for claim, outcome in kept:
                self._follow_up(session, claim, outcome, now)
        for claim, outcome in kept:
            with _about(claim):  # recorded after the call, outside its log context: bind it again
                self._count(claim, outcome)

    def _follow_up(self, session: Session, claim: Claim, outcome: Outcome, now: datetime) -> None:
        """What a recorded outcome means for other rows: the root's thread, a held channel or method."""
        if outcome.state is SENT_STATE and claim.is_root and outcome.ts:
            # Core UPDATE: no version bump, so the reconciler's optimistic lock on the deployment is undisturbed.
            session.execute(
                update(Deployment)
                .where(Deployment.id == claim.deployment_id)
                .values(root_ts=outcome.ts, channel_id=outcome.channel or claim.channel)
            )
        if outcome.rate_limited and outcome.retry_at is not None:
            self._hold(session, claim, outcome.retry_at)
        if outcome.bot_level and outcome.retry_at is not None:
            for method in METHODS.values():
                self._method_hold[method] = outcome.retry_at

    def _hold(self, session: Session, claim: Claim, until: datetime) -> None:
        """After a 429, nothing more for that channel (or method) until Retry-After, here and in other replicas."""
        if claim.kind is not OutboxKind.POST:
            # Per method (chat.update is limited per workspace): every newer edit, coalesced or not, waits too.
            self._method_hold[METHODS[claim.kind]] = until
            pace.hold(session, method_pace_key(METHODS[claim.kind]), until)
            return
        self._next_post[claim.channel] = until
        pace.hold(session, post_pace_key(claim.channel), until)
        session.execute(
            update(Outbox)
            .where(
                Outbox.channel_id == claim.channel,
                Outbox.kind == OutboxKind.POST,
                Outbox.state == PENDING,
                Outbox.not_before < until,
            )
            .values(not_before=until)
        )

    def _count(self, claim: Claim, outcome: Outcome) -> None:
        """Metrics and the log line for a recorded outcome."""
        method = METHODS[claim.kind]
        if outcome.state is SENT_STATE and outcome.ts:
            SENT.labels(method).inc()
            log.debug("outbox row sent", method=method)
        elif outcome.state is FAILED_STATE:
            FAILED.labels(method).inc()
            log.error("outbox %s failed for good (%s): %s", claim.key, method, outcome.error)
        elif outcome.retry_at is not None:
            log.info("outbox %s retries at %s: %s", claim.key, outcome.retry_at.isoformat(), outcome.error)


def _about(claim: Claim) -> AbstractContextManager[None]:
    """The log context of one claim: what every line about it carries."""
    return bound(deployment_id=claim.deployment_id, channel=claim.channel, outbox_key=claim.key)


def _values(claim: Claim, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The columns an outcome sets on its row (a row left SENDING, in doubt, waits for its retry time)."""
    values: dict[str, Any] = {"id": claim.id, "state": outcome.state, "last_error": outcome.error}
    values["attempts"] = claim.attempts if outcome.counts else claim.attempts - 1  # a 429 is pacing, not a try
    if outcome.state is SENT_STATE:
        values.update(slack_ts=outcome.ts, sent_at=now)
    elif outcome.retry_at is not None:
        values["not_before"] = outcome.retry_at
    return values


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
