"""Timing helpers: percentiles, wall-clock accumulators wrapped around instance methods, SQL statement counts."""

from __future__ import annotations

import functools
import math
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Meter:
    """Seconds and calls accumulated by one wrapped callable (thread-safe)."""

    seconds: float = 0.0
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, seconds: float) -> None:
        with self._lock:
            self.seconds += seconds
            self.calls += 1

    def snapshot(self) -> tuple[float, int]:
        with self._lock:
            return self.seconds, self.calls


class Meters:
    """Named meters; `wrap(obj, name)` times every call of that attribute of that one object."""

    def __init__(self) -> None:
        self.meters: dict[str, Meter] = {}

    def meter(self, label: str) -> Meter:
        return self.meters.setdefault(label, Meter())

    def wrap(self, obj: Any, attribute: str, label: str | None = None) -> None:
        """Replace `obj.attribute` (an instance attribute shadowing the method) by a timed version of it."""
        original = getattr(obj, attribute)
        meter = self.meter(label or attribute)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                meter.add(time.perf_counter() - started)

        setattr(obj, attribute, timed)

    def wrap_keyed(self, obj: Any, attribute: str, key: Callable[..., str], prefix: str) -> None:
        """Like `wrap`, one meter per `prefix + key(*args)` (e.g. per ECS operation)."""
        original = getattr(obj, attribute)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            meter = self.meter(prefix + key(*args, **kwargs))
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                meter.add(time.perf_counter() - started)

        setattr(obj, attribute, timed)

    def totals(self) -> dict[str, tuple[float, int]]:
        return {name: m.snapshot() for name, m in self.meters.items()}

    @contextmanager
    def delta(self) -> Iterator[dict[str, tuple[float, int]]]:
        """Yields a dict filled, on exit, with what each meter gained inside the block."""
        before = self.totals()
        out: dict[str, tuple[float, int]] = {}
        try:
            yield out
        finally:
            for name, (seconds, calls) in self.totals().items():
                s0, c0 = before.get(name, (0.0, 0))
                if calls - c0:
                    out[name] = (seconds - s0, calls - c0)


class SqlCounter:
    """Counts SQL statements sent by an engine (all threads), by their first word."""

    def __init__(self, engine: Engine) -> None:
        self.counts: dict[str, int] = {}
        self._shapes: dict[str, int] = {}
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        shape = _shape(statement)
        with self._lock:
            self.counts[verb] = self.counts.get(verb, 0) + 1
            self._shapes[shape] = self._shapes.get(shape, 0) + 1

    def total(self) -> int:
        with self._lock:
            return sum(self.counts.values())

    def by_verb(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def shapes(self) -> dict[str, int]:
        """Statement count by shape: verb and table, plus the WHERE columns of a SELECT (to spot N+1 queries)."""
        with self._lock:
            return dict(self._shapes)


_WORDS = re.compile(r"\s+")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE)\s+(\w+)", re.IGNORECASE)
_WHERE = re.compile(r"\bWHERE\s+(.*?)(?:\bORDER BY\b|\bLIMIT\b|\bFOR UPDATE\b|$)", re.IGNORECASE | re.DOTALL)
_COLUMN = re.compile(r"\b\w+\.(\w+)\s*(?:=|IN\b|IS\b|<|>)", re.IGNORECASE)


def _shape(statement: str) -> str:
    text = _WORDS.sub(" ", statement).strip()
    verb = text.split(" ", 1)[0].upper() if text else "?"
    table = _TABLE.search(text)
    where = _WHERE.search(text)
    columns = sorted(set(_COLUMN.findall(where.group(1)))) if where else []
    return f"{verb} {table.group(1) if table else ''}{' by ' + ','.join(columns) if columns else ''}".strip()


@dataclass
class Row:
    metric: str
    value: float
    unit: str
    target: float | None = None  # the value must stay below it
    applies: bool = True  # False: not measured on this backend (shown as "—", never a miss)

    @property
    def ok(self) -> bool | None:
        if self.target is None or not self.applies:
            return None
        return not math.isnan(self.value) and self.value < self.target

    def shown(self) -> str:
        if not self.applies:
            return "—"
        return "n/a" if math.isnan(self.value) else f"{self.value:,.{0 if self.value >= 100 else 1}f} {self.unit}"
