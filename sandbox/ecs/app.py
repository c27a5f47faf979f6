"""The sandbox application: one lock around the ECS world, the clock, the call log and the ticker.

Requests bring the engine up to the current sandbox time before and after they act, and a light ticker
thread does the same so hooks and timeouts progress when nobody calls.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from . import seed
from .clock import SandboxClock
from .errors import EcsError
from .hooks import LambdaInvoker
from .model import Store
from .operations import OPERATIONS
from .protocol import encode_error, encode_response, parse_body, validate_input
from .simulator import Engine
from .switches import Switches
from .throttle import TIMEOUT, Throttle

TICK_SECONDS = 0.05
MAX_CALLS = 200_000


def _failure(error: EcsError) -> tuple[int, bytes]:
    return (0, b"") if error.code == TIMEOUT else (error.http_status, encode_error(error))


class Sandbox:
    """The whole sandbox: ECS API dispatch plus what the control API manipulates."""

    def __init__(self, speed: float = 1.0, switches: Mapping[str, str] | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = SandboxClock(speed)
        self.switches = Switches(switches)
        self.throttle = Throttle()
        self.invoker = LambdaInvoker(self._remote_answer)
        self.calls: deque[dict[str, Any]] = deque(maxlen=MAX_CALLS)
        self.engine = self._fresh_engine()
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="ecs-sandbox-ticker", daemon=True)
        self._ticker.start()

    def _fresh_engine(self) -> Engine:
        store = Store()
        seed.populate(store, self.clock.now())
        return Engine(store, self.invoker, self.switches)

    def reset(self) -> None:
        """Restore the seeded world and the starting switches; forget alarms, faults, Lambda registrations, calls."""
        with self.lock:
            self.invoker.clear()
            self.switches.reset()
            self.throttle.reset()
            self.calls.clear()
            self.engine = self._fresh_engine()

    def catch_up(self) -> float:
        """Run every deployment up to the current sandbox time; returns that time."""
        with self.lock:
            now = self.clock.now()
            self.engine.run_until(now)
            return now

    def advance(self, seconds: float) -> float:
        """Move the clock forward and process everything due, in time order."""
        with self.lock:
            self.engine.run_until(self.clock.now())
            self.clock.advance(seconds)
            return self.catch_up()

    def call(self, operation: str, raw: bytes, caller: str | None = None) -> tuple[int, bytes]:
        """Handle one ECS API call made with access key `caller`; returns (HTTP status, body); status 0 means: close
        without answering."""
        params: dict[str, Any] = {}
        received = time.time()
        try:
            params = parse_body(raw)
            time.sleep(self.throttle.delay(operation, caller))
            self.throttle.check(operation)
            validate_input(operation, params)
            with self.lock:
                now = self.catch_up()
                body = OPERATIONS[operation](self.engine, params, now)
                self.engine.run_until(now)
        except EcsError as error:
            self._record(operation, params, error.code, applied=False, caller=caller, received=received)
            return _failure(error)
        except Exception as exc:
            # A sandbox bug must still look like AWS to the client: a ServerException.
            bug = EcsError("ServerException", f"Internal sandbox error: {exc!r}")
            self._record(operation, params, bug.code, applied=False, caller=caller, received=received)
            return 500, encode_error(bug)
        lost = self.throttle.lost_answer(operation)
        self._record(operation, params, lost.code if lost else None, applied=True, caller=caller, received=received)
        return _failure(lost) if lost else (200, encode_response(body))

    def _record(
        self,
        operation: str,
        params: dict[str, Any],
        error: str | None,
        *,
        applied: bool,
        caller: str | None = None,
        received: float | None = None,
    ) -> None:
        # `applied`: the call did its work (also when an injected fault then replaced its answer). `received` and
        # `answered` are wall-clock times (a call is in flight between them), `time` the sandbox clock's.
        call = {"operation": operation, "parameters": params, "time": self.clock.now(), "error": error}
        wall = {"caller": caller, "received": received, "answered": time.time()}
        self.calls.append({**call, **wall, "applied": applied, "done": applied})

    def _remote_answer(self, arn: str, hook_id: str, answer: dict[str, Any] | None) -> None:
        with self.lock:
            now = self.catch_up()
            self.engine.remote_answer(arn, hook_id, answer, now)
            self.engine.run_until(now)

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            self.catch_up()

    def close(self) -> None:
        """Stop the ticker and the Lambda workers."""
        self._stopping.set()
        self._ticker.join(timeout=2)
        self.invoker.shutdown()
