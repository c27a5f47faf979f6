"""The outbox sender's record of a pass: outcomes stored, root threads noted, 429 holds shared with other replicas."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.db import pace, store
from bot.db.sessions import transaction
from bot.domain.enums import OutboxKind
from bot.domain.outbox import method_pace_key, post_pace_key
from bot.logs import get_logger
from bot.slack.claims import (
    FAILED,
    FAILED_STATE,
    METHODS,
    PENDING,
    SENT,
    SENT_STATE,
    Claim,
    Outcome,
    SenderState,
    about,
)
from models import Deployment, Outbox

log = get_logger("bot.slack.sender")  # one logger name for the sender's lines, whichever part writes them


class Recording(SenderState):
    """Recording: what became of a pass's attempts, in one transaction."""

    def _record(self, done: Sequence[tuple[Claim, Outcome]], now: datetime) -> None:
        """Store outcomes in one transaction (a crash before it leaves them in doubt: looked up, never re-posted)."""
        if not done:
            return
        with transaction(self.sessions) as session:
            attempts = store.sending_attempts(session, [c.id for c, _ in done])
            kept = [(c, o) for c, o in done if attempts.get(c.id) == c.attempts]
            for claim, outcome in done:
                if attempts.get(claim.id) != claim.attempts:
                    with about(claim):
                        log.warning("outbox %s was taken over; outcome %s dropped", claim.key, outcome.state)
            store.store_outcomes(session, [_values(c, o, now) for c, o in kept])
            posts = {c.channel for c, _ in kept if c.kind is OutboxKind.POST}
            if self.post_interval:
                # Each channel's next turn, for every replica, counts from when Slack answered its call.
                pace.set_times(session, {post_pace_key(ch): self._next_post.get(ch, now) for ch in posts})
            edits = [c for c, o in kept if o.state is SENT_STATE and c.kind is OutboxKind.UPDATE_ROOT]
            store.fold_older_root_edits(
                session, [{"deployment_id": c.deployment_id, "id": c.id, "ts": c.thread_ts} for c in edits], now
            )
            for claim, outcome in kept:
                self._follow_up(session, claim, outcome, now)
        for claim, outcome in kept:
            with about(claim):  # recorded after the call, outside its log context: bind it again
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

    def _hold(self, session: Session, claim: Claim, until: datetime) -> None:
        """After a 429, nothing more for that channel (or method) until Retry-After, here and in other replicas."""
        if claim.kind is not OutboxKind.POST:
            # Per method (chat.update is limited per workspace): every newer edit, coalesced or not, waits too. This
            # process's lanes hold it already (bot/slack/lanes.py, as soon as the 429 came).
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


def _values(claim: Claim, outcome: Outcome, now: datetime) -> dict[str, Any]:
    """The columns an outcome sets on its row (a row left SENDING, in doubt, waits for its retry time)."""
    values: dict[str, Any] = {"id": claim.id, "state": outcome.state, "last_error": outcome.error}
    values["attempts"] = claim.attempts if outcome.counts else claim.attempts - 1  # a 429 is pacing, not a try
    values["lookups"] = outcome.lookups
    if outcome.state is SENT_STATE:
        values.update(slack_ts=outcome.ts, sent_at=now)
    elif outcome.retry_at is not None:
        values["not_before"] = outcome.retry_at
    return values
