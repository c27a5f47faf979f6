"""The benchmark's pure helpers: percentiles, rows against targets, what ECS saw of a budget phase."""

from __future__ import annotations

import math

import pytest

from bench.probes import Row, percentile
from bench.scale import Watch


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, math.nan),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),  # nearest rank: ceil(0.5 × 4) = 2nd
        ([4.0, 3.0, 2.0, 1.0], 95, 4.0),
        ([float(i) for i in range(1, 101)], 95, 95.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    got = percentile(values, q)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize(
    ("row", "ok", "shown"),
    [
        (Row("a", 12.0, "ms", 50.0), True, "12.0 ms"),
        (Row("a", 50.0, "ms", 50.0), False, "50.0 ms"),  # the target is a bound not to reach
        (Row("a", math.nan, "ms", 50.0), False, "n/a"),  # nothing measured is a miss
        (Row("a", math.nan, "ms", 50.0, applies=False), None, "—"),  # not on this backend: no verdict
        (Row("a", 1234.0, "ms"), None, "1,234 ms"),
    ],
)
def test_rows_against_targets(row: Row, ok: bool | None, shown: str) -> None:
    assert row.ok is ok
    assert row.shown() == shown


def watch(*calls: tuple[float, tuple[str, ...]]) -> Watch:
    w = Watch()
    w.calls.extend(calls)
    return w


@pytest.mark.parametrize(
    ("w", "peak"),
    [
        (watch(), 0),
        (watch((0.0, ()), (0.5, ()), (0.99, ())), 3),
        (watch((0.0, ()), (0.5, ()), (1.0, ())), 2),  # a window is [t, t + 1 s)
        (watch((0.0, ()), (2.0, ()), (2.1, ()), (2.2, ()), (5.0, ())), 3),
    ],
)
def test_peak_calls_in_any_second(w: Watch, peak: int) -> None:
    assert w.peak_per_second() == peak


def test_longest_wait_counts_from_the_first_call_and_between_describes() -> None:
    w = watch((10.0, ("a", "b")), (12.0, ("a",)), (17.0, ("b",)), (18.0, ("a", "c")))
    assert w.longest_wait({"a"}) == 6.0  # 12 → 18
    assert w.longest_wait({"b"}) == 7.0  # 10 → 17
    assert w.longest_wait({"c"}) == 8.0  # first seen 8 s after the phase began
    assert w.longest_wait({"z"}) == 0.0
