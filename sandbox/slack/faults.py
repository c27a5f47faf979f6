"""Injected faults: Slack answering 429 with Retry-After, 5xx, or an error after it already did the work.

A 429 holds like Slack's: until its Retry-After has passed, every call of that method (chat.postMessage: in that
channel) is answered 429 again, with the seconds still to wait. Holds and a rule's `seconds` run on the stand-in's
clock (`Store.now`: a test may stop it and move it on), so an outage of minutes costs a test no minutes.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Reply = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class Fault:
    """One rule: calls of `method` ("*" for any) fail this way, `times` times (-1: until cleared), at `rate`."""

    method: str = "*"
    status: int = 200  # 429 → `ratelimited` with Retry-After; 5xx → an HTML error page, like Slack's edge
    error: str | None = None  # a Web API error code answered with ok=false (e.g. fatal_error)
    retry_after: int = 1
    times: int = 1
    rate: float = 1.0
    after_store: bool = False  # do the work first, then answer the error ("some aspect may have succeeded")
    seconds: float | None = None  # the rule lapses this long (on the stand-in's clock) after it was set: an outage

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Fault:
        """A fault from the control API's JSON."""
        fields = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        fault = cls(**fields)
        if fault.status == 200 and not fault.error:
            raise ValueError("a fault needs an HTTP status other than 200, or an error code")
        if fault.method == "response_url" and fault.status != 429 and fault.status < 500:
            raise ValueError("a response_url answers a fault with a 429 or a 5xx (it has no Web API error codes)")
        return fault

    def reply(self) -> Reply:
        """What Slack answers for this fault."""
        if self.status == 429:
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(self.retry_after)}
        if self.status >= 500:
            # The edge answers with a page, not JSON (slack_sdk: "Received a response in a non-JSON format").
            return self.status, {"_html": f"<html><body>{self.status} Server Error</body></html>"}, {}
        return self.status, {"ok": False, "error": self.error}, {}


class Faults:
    """The rules in force, consumed as calls match them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._rules: list[Fault] = []
        self._set_at = clock()  # when the rules were set: a rule's `seconds` count from here
        self._random = random.Random()  # fault injection, not security
        self._holds: dict[str, float] = {}  # method (or method + channel) → the clock's end of its Retry-After

    def set(self, rules: list[Fault], seed: int | None = None) -> None:
        """Replace every rule (and every hold); with `seed`, the same calls draw the same faults."""
        with self._lock:
            self._rules = list(rules)
            self._set_at = self._clock()
            self._random = random.Random(seed)  # fault injection, not security
            self._holds.clear()

    def hold(self, key: str, seconds: float) -> None:
        """A 429 was answered: calls under `key` are refused until `seconds` have passed."""
        with self._lock:
            self._holds[key] = max(self._holds.get(key, 0.0), self._clock() + seconds)

    def held(self, key: str) -> Reply | None:
        """The 429 a call under `key` gets while an earlier 429's Retry-After runs (Slack does not serve it early)."""
        with self._lock:
            left = self._holds.get(key, 0.0) - self._clock()
        if left <= 0:
            return None
        return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(max(1, math.ceil(left)))}

    def clear(self) -> None:
        """No more faults."""
        self.set([])

    def take(self, method: str, *, wildcard: bool = True) -> Fault | None:
        """The fault this call hits, if any (spending one of its `times`); `wildcard=False`: named rules only."""
        with self._lock:
            elapsed = self._clock() - self._set_at
            for rule in self._rules:
                if rule.method not in (("*", method) if wildcard else (method,)) or rule.times == 0:
                    continue
                if rule.seconds is not None and elapsed >= rule.seconds:
                    continue  # the outage is over
                if rule.rate < 1.0 and self._random.random() >= rule.rate:
                    continue
                if rule.times > 0:
                    rule.times -= 1
                return rule
        return None

    def as_list(self) -> list[dict[str, Any]]:
        """JSON-friendly copy."""
        with self._lock:
            return [dict(r.__dict__) for r in self._rules]
