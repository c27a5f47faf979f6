"""Control API under /_sandbox/ (JSON), for tests and the demo.

POST reset                      restore the seeded world (the speed setting is kept)
POST advance    {seconds}       move the sandbox clock forward (events processed in time order)
POST alarm      {name, state}   set a CloudWatch alarm: OK | ALARM | INSUFFICIENT_DATA
POST fault      {operation, code, rate[, after]}   inject ThrottlingException/ServerException/Timeout ('*' =
                                all); rate 0 clears; after=true (ServerException or Timeout): do the call, then
                                answer 500, or close the connection without an answer (Timeout)
POST latency    {min, max[, operations][, callers]}   delay every call (or only those of the operations listed,
                                made with the access key ids listed) by a uniform random [min, max] seconds
                                (0, 0 clears)
POST lambda     {name, url}     register a Lambda function called by HTTP POST at `url`
POST speed      {speed}         sandbox seconds per real second
POST switch     {name, value}   set a named switch for behaviour AWS leaves undocumented (switches.py)
POST throttling {enabled}       switch ECS's token-bucket limits on or off
POST delete-service {service, cluster?}   delete a service with its deployments and revisions (their ARNs are
                                then answered in `failures`, MISSING)
POST forget     {deployment}    drop one service deployment's record, as if ECS had lost it
GET  calls[?operation=X]        every ECS API call received (`done`: carried out, even if answered 500; `caller`:
                                its access key id; `received`/`answered`: wall-clock times, in flight between)
GET  state[?deployment=ARN]     clock, speed, switches, deployment counts, alarms, faults; or one deployment's
                                next wake-up time (`nextWakeAt`)
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .app import Sandbox
from .errors import EcsError
from .model import lambda_arn
from .operations import OPERATIONS
from .switches import SwitchError

ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
FAULT_CODES = ("ThrottlingException", "ServerException", "Timeout")
AFTER_CODES = ("ServerException", "Timeout")
PREFIX = "/_sandbox/"


class ControlError(Exception):
    """A bad control request (HTTP 400, or 404 for an unknown path)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _number(body: dict[str, Any], key: str, minimum: float = 0.0) -> float:
    value = body.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
        raise ControlError(f"{key} must be a number >= {minimum}")
    return float(value)


def _text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ControlError(f"{key} must be a non-empty string")
    return value


def handle(sandbox: Sandbox, method: str, path: str, query: dict[str, str], body: dict[str, Any]) -> Any:
    """Dispatch one control request; returns the JSON answer or raises ControlError."""
    action = path.removeprefix(PREFIX).strip("/")
    if method == "GET" and action == "calls":
        return {
            "calls": [
                c for c in list(sandbox.calls) if "operation" not in query or c["operation"] == query["operation"]
            ]
        }
    if method == "GET" and action == "state":
        return _state(sandbox, query.get("deployment"))
    handler = _POST.get(action) if method == "POST" else None
    if handler is None:
        raise ControlError(f"no control endpoint {method} {path}", status=404)
    return handler(sandbox, body)


def _reset(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    sandbox.reset()
    return {"now": sandbox.clock.now()}


def _advance(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    return {"now": sandbox.advance(_number(body, "seconds"))}


def _alarm(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    name, state = _text(body, "name"), _text(body, "state")
    if state not in ALARM_STATES:
        raise ControlError(f"state must be one of {', '.join(ALARM_STATES)}")
    with sandbox.lock:
        now = sandbox.catch_up()
        sandbox.engine.set_alarm(name, state, now)
        sandbox.engine.run_until(now)
    return {"name": name, "state": state}


def _fault(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    operation, code, rate = _text(body, "operation"), _text(body, "code"), _number(body, "rate")
    if code not in FAULT_CODES or rate > 1:
        raise ControlError(f"code must be one of {', '.join(FAULT_CODES)} and rate between 0 and 1")
    after = body.get("after", False)
    if not isinstance(after, bool) or (after and code not in AFTER_CODES):
        raise ControlError(f"after must be true or false, and true only with {' or '.join(AFTER_CODES)}")
    if after:
        sandbox.throttle.set_fault_after(operation, rate, code)
    else:
        sandbox.throttle.set_fault(operation, code, rate)
    return {"operation": operation, "code": code, "rate": rate, "after": after}


def _latency(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    low, high = _number(body, "min"), _number(body, "max")
    if high < low or high > 30:
        raise ControlError("latency needs 0 <= min <= max <= 30 seconds")
    operations = body.get("operations", [])
    if not isinstance(operations, list) or not all(isinstance(o, str) and o in OPERATIONS for o in operations):
        raise ControlError(f"operations must be a list of ECS operations, of {', '.join(sorted(OPERATIONS))}")
    callers = body.get("callers", [])
    if not isinstance(callers, list) or not all(isinstance(c, str) and c for c in callers):
        raise ControlError("callers must be a list of access key ids")
    sandbox.throttle.set_latency(low, high, frozenset(operations), frozenset(callers))
    return {"min": low, "max": high, "operations": sorted(operations), "callers": sorted(callers)}


def _lambda(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    name, url = _text(body, "name"), _text(body, "url")
    if not url.startswith(("http://", "https://")):
        raise ControlError("url must be an http(s) URL")
    sandbox.invoker.register(name, url)
    return {"name": name, "url": url, "arn": lambda_arn(name)}


def _speed(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    speed = _number(body, "speed")
    with sandbox.lock:
        sandbox.catch_up()
        sandbox.clock.set_speed(speed)
    return {"speed": speed}


def _switch(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    name, value = _text(body, "name"), _text(body, "value")
    try:
        sandbox.switches.set(name, value)
    except SwitchError as exc:
        raise ControlError(str(exc)) from exc
    return {"name": name, "value": value}


def _throttling(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise ControlError("enabled must be true or false")
    sandbox.throttle.set_enabled(enabled)
    return {"enabled": enabled}


def _delete_service(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    name, cluster = _text(body, "service"), body.get("cluster")
    with sandbox.lock:
        sandbox.catch_up()
        store = sandbox.engine.store
        try:
            service = store.service(store.cluster(cluster if isinstance(cluster, str) else None), name)
        except EcsError as exc:
            raise ControlError(exc.message, status=404) from exc
        arns = [d.arn for d in service.deployments]
        sandbox.engine.delete_service(service)
    return {"service": service.arn, "deletedDeployments": arns}


def _forget(sandbox: Sandbox, body: dict[str, Any]) -> Any:
    arn = _text(body, "deployment")
    with sandbox.lock:
        sandbox.catch_up()
        d = sandbox.engine.store.deployments.get(arn)
        if d is None:
            raise ControlError(f"unknown deployment {arn}", status=404)
        sandbox.engine.forget(d)
    return {"forgotten": arn}


def _state(sandbox: Sandbox, deployment: str | None) -> Any:
    with sandbox.lock:
        now = sandbox.catch_up()
        if deployment is not None:
            # Lets a test jump straight to a deployment's next wake-up instead of stepping through a bake.
            d = sandbox.engine.store.deployments.get(deployment)
            if d is None:
                raise ControlError(f"unknown deployment {deployment}", status=404)
            wake = None if d.terminal else d.wake_at
            return {"now": now, "status": d.status, "nextWakeAt": wake}
        statuses = Counter(d.status for d in sandbox.engine.store.deployments.values())
        return {
            "now": now,
            "speed": sandbox.clock.speed,
            "switches": sandbox.switches.as_dict(),
            "throttling": sandbox.throttle.enabled,
            "deployments": dict(statuses),
            "alarms": dict(sandbox.engine.alarm_states),
            "faults": {op: {"code": c, "rate": r} for op, (c, r) in sandbox.throttle.faults().items()},
            "faultsAfter": {op: {"code": c, "rate": r} for op, (c, r) in sandbox.throttle.faults_after().items()},
            "pendingWakeups": sandbox.engine.pending_wakeups(),
        }


_POST = {
    "reset": _reset,
    "advance": _advance,
    "alarm": _alarm,
    "fault": _fault,
    "lambda": _lambda,
    "latency": _latency,
    "speed": _speed,
    "switch": _switch,
    "throttling": _throttling,
    "delete-service": _delete_service,
    "forget": _forget,
}
