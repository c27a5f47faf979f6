"""Lifecycle hooks: PAUSE hooks, built-in Lambda functions, and Lambda functions registered by URL.

Built-in functions (named by the function name at the end of hookTargetArn):
    succeed  -> SUCCEEDED
    fail     -> FAILED
    slow     -> IN_PROGRESS (callBackDelay 5 s) three times, then SUCCEEDED
    error    -> a function error (counts as FAILED)
A function registered through `POST /_sandbox/lambda` is called with an HTTP POST of the documented payload;
the HTTP call runs on a worker thread, outside the sandbox lock, and its answer is applied when it returns.
"""

from __future__ import annotations

import json
import string
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .model import HookRun, ServiceDeployment, random_id
from .plan import LAMBDA_LATENCY_SECONDS

DEFAULT_TIMEOUT_MINUTES = 1440
DEFAULT_CALLBACK_DELAY = 30.0
SLOW_ROUNDS = 3
HOOK_STATUSES = frozenset({"SUCCEEDED", "FAILED", "IN_PROGRESS"})
# As in the pause-hook guide's example, `ecs-pause-e7tK9G_WRJqNF_EOMjztDXfKenlJuEUVjsNStf4WLKw`: 43 base64url
# characters (32 random bytes), so ids are mixed-case and may hold `-` and `_`.
PAUSE_ID_PREFIX = "ecs-pause-"
PAUSE_ID_LENGTH = 43
PAUSE_ID_ALPHABET = string.ascii_letters + string.digits + "-_"

RemoteDone = Callable[[str, str, dict[str, Any] | None], None]


def function_name(arn: str) -> str:
    """Function name from a Lambda ARN (qualifiers such as aliases are dropped)."""
    parts = arn.split(":")
    if len(parts) >= 7 and parts[5] == "function":
        return parts[6]
    return arn.rpartition(":")[2]


def start_runs(deployment: ServiceDeployment, stage: str, at: float, lambda_only: bool) -> list[HookRun]:
    """Create this stage's hook invocations (all hooks of a stage run in parallel)."""
    runs = []
    for hook in deployment.config.get("lifecycleHooks") or []:
        target_type = hook.get("targetType", "AWS_LAMBDA")
        if stage not in hook.get("lifecycleStages", []) or (lambda_only and target_type != "AWS_LAMBDA"):
            continue
        timeout = hook.get("timeoutConfiguration") or {}
        expires = at + 60.0 * int(timeout.get("timeoutInMinutes", DEFAULT_TIMEOUT_MINUTES))
        action = str(timeout.get("action", "ROLLBACK"))
        if target_type == "PAUSE":
            hook_id = PAUSE_ID_PREFIX + random_id(PAUSE_ID_LENGTH, PAUSE_ID_ALPHABET)
            runs.append(HookRun(hook_id, "PAUSE", None, stage, "AWAITING_ACTION", expires, action))
        else:
            details = hook.get("hookDetails")
            run = HookRun(
                str(uuid.uuid4()),
                "AWS_LAMBDA",
                hook.get("hookTargetArn"),
                stage,
                "IN_PROGRESS",
                expires,
                action,
                details=dict(details) if isinstance(details, dict) else {},
                due_at=at + LAMBDA_LATENCY_SECONDS,
            )
            runs.append(run)
    return runs


def expire(runs: list[HookRun], at: float) -> None:
    """Time out undecided hooks whose expiresAt has passed; the timeout action decides the outcome."""
    for run in runs:
        if run.outcome is None and run.expires_at <= at:
            run.status = "TIMED_OUT"
            run.due_at = None
            run.outcome = "ok" if run.timeout_action == "CONTINUE" else "fail"


def verdict(runs: list[HookRun]) -> str | None:
    """'fail' if any hook failed, 'ok' when all succeeded, None while any is undecided."""
    if any(run.outcome == "fail" for run in runs):
        return "fail"
    return "ok" if all(run.outcome == "ok" for run in runs) else None


def next_event(runs: list[HookRun]) -> float | None:
    """Earliest time a hook needs attention (invocation due or timeout)."""
    times = [run.expires_at for run in runs if run.outcome is None]
    times += [run.due_at for run in runs if run.outcome is None and run.due_at is not None]
    return min(times) if times else None


def payload(deployment: ServiceDeployment, run: HookRun) -> dict[str, Any]:
    """The documented Lambda event; weight maps are filled only at the traffic-shift stages."""
    revisions = [deployment.target, *deployment.sources]
    test = {r.revision.arn: r.test_weight for r in revisions} if run.hook_stage == "TEST_TRAFFIC_SHIFT" else {}
    prod = {}
    if run.hook_stage == "PRODUCTION_TRAFFIC_SHIFT":
        prod = {r.revision.arn: r.prod_weight for r in revisions}
    return {
        "executionId": run.hook_id,
        "lifecycleStage": run.hook_stage,
        "resourceArn": deployment.arn,
        "executionDetails": {
            "serviceArn": deployment.service.arn,
            "targetServiceRevisionArn": deployment.target.revision.arn,
            "testTrafficWeights": test,
            "productionTrafficWeights": prod,
        },
        "hookDetails": run.details,
    }


def apply_answer(run: HookRun, answer: Any, at: float) -> None:
    """Apply a function's answer (None = function error); anything unparseable counts as FAILED."""
    status = answer.get("hookStatus") if isinstance(answer, dict) else None
    if status not in HOOK_STATUSES or not isinstance(answer, dict):
        run.status, run.outcome, run.due_at = "FAILED", "fail", None
        return
    if isinstance(answer.get("hookDetails"), dict):
        run.details = {**run.details, **answer["hookDetails"]}
    if status == "IN_PROGRESS":
        delay = answer.get("callBackDelay", DEFAULT_CALLBACK_DELAY)
        delay = float(delay) if isinstance(delay, int | float) and delay >= 0 else DEFAULT_CALLBACK_DELAY
        run.status, run.due_at = "IN_PROGRESS", at + delay
        return
    run.status, run.due_at = str(status), None
    run.outcome = "ok" if status == "SUCCEEDED" else "fail"


def builtin_answer(name: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """Answer of a built-in function, or None for an unknown function or `error` (a function error)."""
    if name == "succeed":
        return {"hookStatus": "SUCCEEDED"}
    if name == "fail":
        return {"hookStatus": "FAILED"}
    if name == "slow":
        rounds = int(event["hookDetails"].get("slowRounds", 0)) + 1
        if rounds <= SLOW_ROUNDS:
            return {"hookStatus": "IN_PROGRESS", "callBackDelay": 5, "hookDetails": {"slowRounds": rounds}}
        return {"hookStatus": "SUCCEEDED"}
    return None


class LambdaInvoker:
    """Calls functions registered by URL on worker threads and reports answers back to the engine."""

    def __init__(self, done: RemoteDone, timeout: float = 10.0) -> None:
        self._done = done
        self._timeout = timeout
        self._urls: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ecs-sandbox-lambda")

    def register(self, name: str, url: str) -> None:
        """Route invocations of `name` to an HTTP endpoint."""
        self._urls[name] = url

    def clear(self) -> None:
        """Forget every registered function."""
        self._urls.clear()

    def url_for(self, arn: str | None) -> str | None:
        """URL of a registered function, if the ARN names one."""
        return self._urls.get(function_name(arn or ""))

    def submit(self, url: str, deployment_arn: str, hook_id: str, event: dict[str, Any]) -> None:
        """Invoke a function by URL in the background."""
        self._pool.submit(self._call, url, deployment_arn, hook_id, event)

    def _call(self, url: str, deployment_arn: str, hook_id: str, event: dict[str, Any]) -> None:
        answer: dict[str, Any] | None = None
        try:
            request = urllib.request.Request(  # noqa: S310 - URLs come from the local control API
                url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                parsed = json.loads(response.read() or b"null")
            answer = parsed if isinstance(parsed, dict) else None
        except Exception:
            # Any function error (unreachable, non-JSON, timeout) counts as FAILED.
            answer = None
        self._done(deployment_arn, hook_id, answer)

    def shutdown(self) -> None:
        """Stop the worker threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
