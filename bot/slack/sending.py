"""The outbox sender's attempt at one claim: look for an earlier post, render, call Slack, classify a failure."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from slack_sdk.errors import SlackClientError
from sqlalchemy import select

from bot.db import pace
from bot.db.renewal import Renewal
from bot.db.sessions import transaction
from bot.domain import backoff
from bot.domain.enums import OutboxKind, RenderKind, SlackFailureKind
from bot.domain.outbox import post_pace_key
from bot.logs import get_logger
from bot.slack.blocks import Message, plain_fallback
from bot.slack.claims import (
    FAILED_STATE,
    METHODS,
    PENDING,
    RATE_LIMITED,
    RECOVERED,
    SENDING,
    SENT_STATE,
    Claim,
    Outcome,
    SenderState,
)
from bot.slack.errors import SlackFailure, classify
from bot.slack.lookup import METADATA_EVENT
from bot.slack.render import Overtaken, render, render_many
from models import Outbox

SETTLING = "its last sender stopped mid-post and Slack may still be storing it: looked up again once that call ended"
log = get_logger("bot.slack.sender")  # one logger name for the sender's lines, whichever part writes them


class Sending(SenderState):
    """Sending: one attempt per claim, outside any transaction."""

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
                    return self._lookup_failed(claim, exc, now)
            if found is not None:
                RECOVERED.inc()
                log.info("outbox %s was already in Slack (ts %s): recorded, not posted again", claim.key, found)
                recovered = "recovered: found by metadata"  # a look-up, not a post: attempts keep counting posts
                return Outcome(SENT_STATE, ts=found, channel=claim.channel, error=recovered, counts=False)
            if claim.settle_until is not None and self._at() < claim.settle_until:
                # Not in Slack yet, but its last sender's call may still be storing it: look again once that has ended.
                return Outcome(SENDING, error=SETTLING, retry_at=claim.settle_until, counts=False)
        if claim.attempts > self.max_attempts:
            return Outcome(FAILED_STATE, error=f"gave up after {self.max_attempts} attempts", counts=False)
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
        try:
            with self._turn_kept(claim.channel):
                resp = self.client.chat_postMessage(
                    channel=claim.channel,
                    text=message.text,
                    thread_ts=claim.thread_ts,
                    unfurl_links=False,
                    unfurl_media=False,
                    blocks=blocks,
                    metadata={"event_type": METADATA_EVENT, "event_payload": {"key": claim.key}},
                )
        finally:
            # Slack stamps a post when it stores it, late in a slow call: the channel's next turn (every replica's,
            # through the record) counts from the answer, or a slow post and the next one land closer than that.
            self._next_post[claim.channel] = self._at() + self.post_interval
        return Outcome(SENT_STATE, ts=resp["ts"], channel=resp.get("channel") or claim.channel)

    def _turn_kept(self, channel: str) -> AbstractContextManager[object]:
        """The channel's turn stays taken, for every replica, while its post is in flight (renewed every half
        interval): it was reserved for the post's window to be called in plus an interval, and a post begun by another
        replica once that ran out could be stored before a slow one still on its way, or within the same second."""
        if not self.post_interval:
            return nullcontext()
        return Renewal(partial(self._keep_turn, channel), self.post_interval / 2, what="a channel's turn")

    def _keep_turn(self, channel: str) -> None:
        with transaction(self.sessions) as session:
            pace.hold(session, post_pace_key(channel), self._at() + 2 * self.post_interval)

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
        delay = timedelta(seconds=backoff.wait(claim.attempts, self.jitter(), self.backoff_cap))
        if claim.attempts >= self.max_attempts:
            if doubt:  # Slack may hold it: look once more (found → sent; not found → given up), never fail blind
                error = f"{reason} after {claim.attempts} attempts (it may have been posted: looking once more)"
                return Outcome(state, error=error, retry_at=now + delay)
            return Outcome(FAILED_STATE, error=f"{reason} after {claim.attempts} attempts")
        return Outcome(state, error=reason, retry_at=now + delay)

    def _lookup_failed(self, claim: Claim, exc: Exception, now: datetime) -> Outcome:
        """Slack failed the look-up: no post was made, so no attempt is spent; look again after its own back-off.

        A post in doubt keeps looking for as long as Slack fails the look-up (every `backoff_cap` at most) rather
        than failing: failing could lose it, and posting unchecked could show it twice while Slack can still tell.
        """
        if not isinstance(exc, (SlackClientError, OSError)):  # not Slack's failure (a history too long): counted
            outcome = self._failure(claim, exc, now, in_doubt=True)
        else:
            # attempts=0: a look-up never gives the message up; a 429 or a refused token holds it like any call.
            outcome = self._failure(replace(claim, attempts=0), exc, now, in_doubt=True)
            if outcome.rate_limited or outcome.bot_level:
                outcome = replace(outcome, lookups=claim.lookups)  # Slack's hold, not a failed look-up
            else:
                wait = timedelta(seconds=backoff.wait(claim.lookups + 1, self.jitter(), self.backoff_cap))
                outcome = replace(outcome, retry_at=now + wait, counts=False, lookups=claim.lookups + 1)
        return replace(outcome, error=f"lookup failed, the message may be in Slack: {outcome.error}")
