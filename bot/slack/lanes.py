"""Sender lanes: a pass's claims sent by a bounded pool of threads, one channel per lane at a time, recorded as they go.

A Slack call takes 100-300 ms, so one thread caps a process at 3-10 messages a second however many channels wait;
Slack's own limits are per channel for chat.postMessage (about one a second, plus a workspace-wide limit) and per
method per workspace for the tiered methods. A lane takes the pass's next claim in the claim's order (most urgent
first) whose channel no other lane is sending to: within a channel the order is exactly the claim's, as with one
thread, and different channels go in parallel. The pass's own thread records the outcomes as the lanes hand them
over (whatever piled up meanwhile in one transaction, at once after a 429 or a bot-level error). A 429 on a tiered
method holds that method in every lane at once; a bot-level error stops every lane.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime

from bot.domain.enums import OutboxKind
from bot.logs import get_logger
from bot.slack.claims import METHODS, SENT_STATE, Claim, Outcome, about
from bot.slack.recording import Recording
from bot.slack.sending import Sending

log = get_logger("bot.slack.sender")  # one logger name for the sender's lines, whichever part writes them

RECORD_EVERY = 20  # outcomes stored per transaction at most (one commit per message cost more than a send)
Done = tuple[Claim, Outcome]


class Dispatch:
    """One pass's claims not taken yet, the channels a lane is sending to now, and the claims handed back."""

    def __init__(self, claims: Sequence[Claim]) -> None:
        self._todo = list(claims)
        self._busy: set[str] = set()
        self._cond = threading.Condition()
        self.back: list[Claim] = []  # handed back untouched (never attempted): released at the end of the pass

    def take(self) -> Claim | None:
        """The first claim whose channel no lane is sending to (waits while only busy channels are left); None: done."""
        with self._cond:
            while self._todo:
                for i, claim in enumerate(self._todo):
                    if claim.channel not in self._busy:
                        self._busy.add(claim.channel)
                        return self._todo.pop(i)
                self._cond.wait()
            return None

    def done(self, claim: Claim, *, handed_back: bool = False) -> None:
        """The claim's lane is through with it: its channel is free for the next claim there."""
        with self._cond:
            self._busy.discard(claim.channel)
            if handed_back:
                self.back.append(claim)
            self._cond.notify_all()

    def stop(self) -> None:
        """No lane takes another claim: the ones not taken are handed back."""
        with self._cond:
            self.back += self._todo
            self._todo = []
            self._cond.notify_all()


class Laning(Sending, Recording):
    """Sending a pass's claims in lanes, and recording their outcomes as they come."""

    lanes: int
    _pool: ThreadPoolExecutor

    def _send_all(self, claims: list[Claim], now: datetime, started: float, budget: float, dispatch: Dispatch) -> int:
        """Attempt every claim in lanes and record the outcomes; how many messages Slack accepted.

        Whatever happens, no lane is still calling Slack when this returns, and `dispatch.back` holds exactly the
        claims never attempted (a claim attempted but not recorded stays SENDING under its lease: in doubt).
        """
        lanes: list[Future[None]] = []
        try:
            self._rendered = self._render_all(claims, now)
            # While Slack refuses the bot, one call probes (a burst of refused calls says nothing more).
            workers = 1 if self.health.blocked else min(self.lanes, len({c.channel for c in claims}))
            handed: queue.SimpleQueue[Done | None] = queue.SimpleQueue()
            lanes = [
                # Each lane runs in a copy of the pass's context (log fields), as every pool of the bot does.
                self._pool.submit(contextvars.copy_context().run, self._lane, dispatch, handed, now, started, budget)
                for _ in range(workers)
            ]
            return self._record_as_they_come(handed, workers, now)
        finally:
            dispatch.stop()  # nothing new starts if recording failed; the calls in flight end before the pass does
            wait(lanes)

    def _lane(
        self, dispatch: Dispatch, handed: queue.SimpleQueue[Done | None], now: datetime, started: float, budget: float
    ) -> None:
        """One lane: take claims until none is left, attempt each, hand each outcome to the recorder at once."""
        try:
            while (claim := dispatch.take()) is not None:
                attempted = False
                try:
                    if not self._may_go(claim, started, budget):
                        continue
                    attempted = True  # from here a post may be in Slack: never handed back as untouched
                    outcome = self._turn(claim, now)
                    if outcome.bot_level:
                        dispatch.stop()  # every other call would be refused the same way (before it is recorded)
                    handed.put((claim, outcome))
                finally:
                    dispatch.done(claim, handed_back=not attempted)
        except Exception:  # a bug: the claims it leaves SENDING are in doubt under their lease, never lost
            log.exception("a sender lane failed")
        finally:
            handed.put(None)  # this lane has ended

    def _may_go(self, claim: Claim, started: float, budget: float) -> bool:
        """False to hand the claim back untouched: no time left, held, or past its window in the channel's turn."""
        if time.monotonic() - started > budget:
            return False
        # A 429 in another lane or an earlier pass, or too late for the channel's turn: next pass.
        return not self._held(claim) and (claim.send_by is None or self._at() <= claim.send_by)

    def _turn(self, claim: Claim, now: datetime) -> Outcome:
        """The claim's attempt, and any hold it brings in every lane at once."""
        with about(claim):
            try:
                outcome = self._attempt(claim, now)
            except Exception as exc:  # not Slack's answer (a bug): never lost, and a post may have gone
                log.exception("outbox %s: the attempt failed unexpectedly", claim.key)
                outcome = self._failure(claim, exc, now, in_doubt=claim.kind is OutboxKind.POST)
        self._hold_everywhere(claim, outcome)
        return outcome

    def _held(self, claim: Claim) -> bool:
        """Slack asked this process to hold the claim's method (a 429 or a bot-level error, in any lane)."""
        return self._method_hold.get(METHODS[claim.kind], self._at()) > self._at()

    def _hold_everywhere(self, claim: Claim, outcome: Outcome) -> None:
        """A hold Slack asked for, in every lane of this process at once (the record shares it with other replicas).

        A 429 on a tiered method (chat.update, chat.postEphemeral) holds that method, limited per workspace; one on
        chat.postMessage holds its channel (its lane's own, recorded at once); a bot-level error holds every method.
        """
        if outcome.rate_limited and outcome.retry_at is not None and claim.kind is not OutboxKind.POST:
            self._method_hold[METHODS[claim.kind]] = outcome.retry_at
        if outcome.bot_level and outcome.retry_at is not None:
            for method in METHODS.values():
                self._method_hold[method] = outcome.retry_at

    def _record_as_they_come(self, handed: queue.SimpleQueue[Done | None], lanes: int, now: datetime) -> int:
        """Record outcomes as the lanes hand them over until every lane has ended; how many Slack accepted."""
        sent, ended = 0, 0
        while ended < lanes:
            item = handed.get()
            batch: list[Done] = []
            while True:
                if item is None:
                    ended += 1
                else:
                    batch.append(item)
                    if item[1].rate_limited or item[1].bot_level:
                        break  # a hold is shared with the other replicas at once
                if len(batch) >= RECORD_EVERY or handed.empty():
                    break
                item = handed.get()
            self._record(batch, now)
            sent += sum(o.state is SENT_STATE and o.ts is not None for _, o in batch)
        return sent
