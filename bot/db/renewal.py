"""Leases renewed while their work runs: a pass's claims stay its own however slow ECS or Slack is, for a while.

A lease is short (DEPLOYBOT_LEASE_SECONDS) so that an owner that stops renewing loses it soon; a pass that is alive
renews what it still holds every third of a lease from a thread of its own, so a slow describe or a send that makes
many Slack calls is never taken over and repeated by another replica. Renewal stops after `MAX_HOLD`: a pass stuck
that long (not merely slow) loses its claims like a dead one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from functools import partial
from types import TracebackType

from bot.logs import get_logger

log = get_logger(__name__)
MAX_HOLD = timedelta(minutes=10)


def renewing(
    renew: Callable[[list[int]], object], ids: Sequence[int], lease: timedelta, what: str
) -> AbstractContextManager[object]:
    """`renew(ids)` every third of `lease` while the `with` block runs; nothing to renew when nothing is held."""
    if not ids:
        return nullcontext()
    return Renewal(partial(renew, list(ids)), lease / 3, what=what)


class Renewal:
    """Calls `renew` every `every` until the `with` block ends, or until `MAX_HOLD` has passed since it began."""

    def __init__(
        self, renew: Callable[[], object], every: timedelta, hold: timedelta = MAX_HOLD, what: str = "leases"
    ) -> None:
        self.renew, self.every, self.hold, self.what = renew, every.total_seconds(), hold.total_seconds(), what
        self.renewals = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"renew-{what}", daemon=True)

    def __enter__(self) -> Renewal:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        deadline = time.monotonic() + self.hold
        while not self._stop.wait(self.every):
            if time.monotonic() >= deadline:
                # Stuck, not slow: the claims end with the lease now running, and another replica takes them.
                log.warning("a pass has held its %s for %.0f s: no longer renewing them", self.what, self.hold)
                return
            try:
                self.renew()
                self.renewals += 1
            except Exception:  # a failed renewal is tried again at the next third; the lease covers two more
                log.warning("renewing %s failed", self.what, exc_info=True)
