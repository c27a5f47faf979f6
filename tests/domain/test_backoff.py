"""The outbox sender's back-off: the schedule after each failed Slack call, its jitter, and how long it holds on."""

from __future__ import annotations

import pytest

from bot.domain import backoff


@pytest.mark.parametrize(
    ("failures", "jitter", "cap", "seconds"),
    [
        (0, 0.0, backoff.CAP, 0.0),  # nothing failed: no wait
        (1, 0.0, backoff.CAP, 2.0),
        (2, 0.0, backoff.CAP, 4.0),
        (3, 0.0, backoff.CAP, 8.0),
        (4, 0.0, backoff.CAP, 16.0),
        (5, 0.0, backoff.CAP, 30.0),  # 32 capped
        (6, 0.0, backoff.CAP, 30.0),
        (14, 0.0, backoff.CAP, 30.0),
        (10_000, 0.0, backoff.CAP, 30.0),  # no overflow however long an outage
        (1, 0.5, backoff.CAP, 2.1),  # half the jitter: +5 %
        (1, 0.999, backoff.CAP, 2.1998),  # never quite +10 %
        (5, 0.999, backoff.CAP, 32.997),  # the cap's jitter is on top of the cap
        (1, 7.0, backoff.CAP, 2.2),  # a jitter source out of range is held to [0, 1]
        (1, -1.0, backoff.CAP, 2.0),
        (3, 0.0, 2.0, 2.0),  # `make test`'s cap
        (3, 0.0, 300.0, 8.0),
        (9, 0.0, 300.0, 300.0),  # the old 5-minute cap, for comparison
    ],
)
def test_the_wait_after_each_failure(failures: int, jitter: float, cap: float, seconds: float) -> None:
    assert backoff.wait(failures, jitter, cap) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("max_attempts", "cap", "seconds"),
    [
        (backoff.MAX_ATTEMPTS, backoff.CAP, 330.0),  # 2 + 4 + 8 + 16 + 10 × 30: outlasts a five-minute outage
        (8, 300.0, 254.0),  # the schedule before: given up after 4¼ minutes
        (1, backoff.CAP, 0.0),  # one call, no retry
        (5, backoff.CAP, 30.0),
    ],
)
def test_patience_is_the_sum_of_the_waits_between_calls(max_attempts: int, cap: float, seconds: float) -> None:
    assert backoff.patience(max_attempts, cap) == pytest.approx(seconds)


def test_the_production_schedule_outlasts_five_minutes() -> None:
    assert backoff.patience() >= 5 * 60
