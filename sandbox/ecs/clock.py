"""Sandbox clock: epoch seconds that run `speed` times faster than real time, plus manual offsets.

The clock starts at the real wall-clock time so timestamps look plausible; `advance` adds an offset so
tests can jump through bakes and timeouts without sleeping.
"""

from __future__ import annotations

import threading
import time


class SandboxClock:
    """Thread-safe scaled clock; `now()` is sandbox epoch seconds."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        self._lock = threading.Lock()
        self._speed = float(speed)
        self._base_real = time.monotonic()
        self._base_sandbox = time.time() if start is None else start

    @property
    def speed(self) -> float:
        """Sandbox seconds per real second."""
        return self._speed

    def now(self) -> float:
        """Current sandbox time in epoch seconds."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        # Millisecond precision, like AWS: clients echo timestamps back (createdAt filters) and must compare equal.
        return round(self._base_sandbox + (time.monotonic() - self._base_real) * self._speed, 3)

    def advance(self, seconds: float) -> float:
        """Jump forward by `seconds`; returns the new time."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._base_sandbox += seconds
            return self._now_locked()

    def set_speed(self, speed: float) -> None:
        """Change the rate without a jump in the current time."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        with self._lock:
            # Rebase so the time read just before and just after the change agree.
            self._base_sandbox = self._now_locked()
            self._base_real = time.monotonic()
            self._speed = float(speed)
