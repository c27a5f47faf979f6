"""How long the outbox sender waits after a failed Slack call, and how many calls it makes before giving up.

Waits double from 2 s to a 30 s cap (2, 4, 8, 16, 30, 30, …), each plus up to 10 % jitter so rows that failed
together do not all come back in the same second. MAX_ATTEMPTS calls span `patience()` = 330 s: a Slack outage
of five minutes must not lose a message (the old schedule, 8 calls capped at 300 s, gave up after 254 s).
"""

from __future__ import annotations

FIRST = 2.0  # seconds after the first failed call
CAP = 30.0  # no wait longer than this: a short Slack outage ends in one cap, not in five minutes' silence
JITTER = 0.10  # up to this fraction of the wait is added
MAX_ATTEMPTS = 15  # calls of one message (429s and failed look-ups are not counted): patience() >= 330 s


def wait(failures: int, jitter: float = 0.0, cap: float = CAP) -> float:
    """Seconds before the next try after `failures` failed ones; `jitter` in [0, 1) adds up to JITTER of it."""
    if failures < 1:
        return 0.0
    base = min(cap, FIRST * 2.0 ** min(failures - 1, 30))  # the exponent is bounded: 2**30 s passes any cap
    return base * (1.0 + JITTER * min(max(jitter, 0.0), 1.0))


def patience(max_attempts: int = MAX_ATTEMPTS, cap: float = CAP) -> float:
    """Seconds from a message's first call to its last (jitter left out): how long an outage it outlasts."""
    return sum(wait(n, cap=cap) for n in range(1, max_attempts))
