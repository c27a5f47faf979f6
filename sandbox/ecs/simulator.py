"""The deployment state machine: runs every deployment's plan (plan.py) against the sandbox clock.

Each deployment waits on at most one wake-up time, kept in a heap; `run_until(now)` pops due wake-ups in time
order and executes plan steps *at the wake-up's own time*, so one big `advance` lands exactly where many small
ones would. All methods expect the sandbox lock to be held.
"""

from __future__ import annotations

import heapq
import math
from typing import Any

from . import hooks, plan
from .errors import EcsError, invalid
from .model import ACTIVE, HookRun, RevisionState, Service, ServiceDeployment, ServiceRevision, Step, Store
from .switches import SUPERSEDE_REASONS, Switches

HOOK_FAILURE = "deployment failed: hook execution failure(s) detected"
# StopServiceDeployment on these answers without error and changes nothing (ECS_BEHAVIOUR.md §6).
STOPPING = frozenset({"STOP_REQUESTED", "ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS"})
NEXT, BLOCK, JUMP = "next", "block", "jump"


class Engine:
    """Advances deployments, applies hook answers, alarms, stops and rollbacks."""

    def __init__(self, store: Store, invoker: hooks.LambdaInvoker, switches: Switches | None = None) -> None:
        self.store = store
        self.invoker = invoker
        self.switches = switches or Switches()
        self.alarm_states: dict[str, str] = {}
        self._heap: list[tuple[float, int, str, int]] = []
        self._watch: dict[str, set[str]] = {}

    # -- scheduling -------------------------------------------------------------------------------------------

    def _schedule(self, d: ServiceDeployment, at: float) -> None:
        d.token += 1
        d.wake_at = at
        heapq.heappush(self._heap, (at, self.store.next_seq(), d.arn, d.token))

    def run_until(self, now: float) -> None:
        """Bring every deployment up to `now`, processing wake-ups in time order."""
        while self._heap and self._heap[0][0] <= now:
            at, _, arn, token = heapq.heappop(self._heap)
            d = self.store.deployments.get(arn)
            if d is not None and d.token == token and not d.terminal:
                self._run(d, at)

    def pending_wakeups(self) -> int:
        """Number of queued wake-ups (including stale ones); for the state endpoint."""
        return len(self._heap)

    # -- starting ---------------------------------------------------------------------------------------------

    def start(self, service: Service, target: ServiceRevision, at: float) -> ServiceDeployment:
        """Start a deployment of `target`, stopping any deployment still in progress."""
        previous = {r.revision.arn: r for d in service.deployments for r in (d.target, *d.sources)}
        for old in service.deployments:
            if old.status in ACTIVE:
                self._supersede(old, at)
        sources = [
            self._source_state(previous, rev, i == 0, service)
            for i, rev in enumerate(r for r in service.active_revisions if r.arn != target.arn)
        ]
        d = ServiceDeployment(
            arn=self.store.new_deployment_arn(service),
            service=service,
            created_at=at,
            updated_at=at,
            config=_copy(service.deployment_configuration),
            target=RevisionState(target),
            sources=sources,
            desired=service.desired_count,
            seq=self.store.next_seq(),
        )
        d.plan = plan.build_plan(d, self.switches.as_dict())
        self._arm_monitors(d)
        self.store.deployments[d.arn] = d
        service.deployments.append(d)
        service.active_revisions = [*(s.revision for s in sources), target]
        service.task_definition = target.task_definition
        self._run(d, at)
        return d

    def _source_state(
        self, previous: dict[str, RevisionState], rev: ServiceRevision, primary: bool, service: Service
    ) -> RevisionState:
        known = previous.get(rev.arn)
        state = RevisionState(rev)
        if primary or known is None:
            state.requested = state.running = service.desired_count
        else:
            state.requested, state.running = known.requested, known.running
        if not service.headless:
            state.test_weight = state.prod_weight = 100.0 if primary else 0.0
        return state

    def _arm_monitors(self, d: ServiceDeployment) -> None:
        breaker = d.config.get("deploymentCircuitBreaker") or {}
        d.breaker_status = "MONITORING" if breaker.get("enable") else "DISABLED"
        alarms = d.config.get("alarms") or {}
        if alarms.get("enable") and alarms.get("alarmNames"):
            d.alarm_status = "MONITORING"
            # Alarms already firing when the deployment starts are ignored for this deployment.
            d.ignored_alarms = {n for n in alarms["alarmNames"] if self.alarm_states.get(n) == "ALARM"}
            for name in alarms["alarmNames"]:
                self._watch.setdefault(name, set()).add(d.arn)

    def _supersede(self, d: ServiceDeployment, at: float) -> None:
        self._close_hooks(d)
        d.status, d.updated_at = "STOP_REQUESTED", at
        d.status_reason = SUPERSEDE_REASONS[self.switches.get("supersede_reason")]
        self._replace_plan(d, plan.stop_plan(), at)

    # -- running plans ----------------------------------------------------------------------------------------

    def _run(self, d: ServiceDeployment, at: float) -> None:
        while not d.terminal and d.pc < len(d.plan):
            outcome = self._execute(d, d.plan[d.pc], at)
            if outcome == BLOCK:
                return
            if outcome == NEXT:
                d.pc += 1

    def _execute(self, d: ServiceDeployment, step: Step, at: float) -> str:
        if step.kind == "wait":
            return self._wait(d, step.seconds, at)
        if step.kind in ("hooks", "rollback_hooks"):
            return self._hooks(d, step, at)
        if step.kind == "health":
            return self._health(d, at)
        if step.kind == "stage_timeout":
            reason = f"deployment failed: lifecycle stage {d.lifecycle_stage} ran longer than 24 hours"
            return self._rollback(d, at, reason, requested=False)
        d.updated_at = at
        if step.kind == "status":
            self._set_status(d, step.name, at)
        elif step.kind == "stage":
            d.lifecycle_stage = step.name
            self._set_hooks(d, [])
        elif step.kind == "weights":
            self._set_weights(d, step.test, step.prod)
        elif step.kind == "scale_up":
            d.target.requested = d.target.pending = d.desired
        elif step.kind == "clean_up":
            for source in d.sources:
                source.requested = source.running = source.pending = 0
        elif step.kind == "restore":
            self._restore(d)
        elif step.kind == "finish":
            self._finish(d, step.name, at)
        return NEXT

    def _wait(self, d: ServiceDeployment, seconds: float, at: float) -> str:
        if d.wait_until is None:
            d.wait_until = at + seconds
        if at < d.wait_until:
            self._schedule(d, d.wait_until)
            return BLOCK
        d.wait_until = None
        return NEXT

    def _set_status(self, d: ServiceDeployment, status: str, at: float) -> None:
        d.status = status
        if status == "IN_PROGRESS":
            d.started_at = at

    def _set_weights(self, d: ServiceDeployment, test: float | None, prod: float | None) -> None:
        if d.target.revision.headless:
            return  # headless: nothing to shift, weights stay 0
        if test is not None:
            d.target.test_weight = test
        if prod is not None:
            d.target.prod_weight = prod
        for i, source in enumerate(d.sources):
            source.test_weight = 100.0 - d.target.test_weight if i == 0 else 0.0
            source.prod_weight = 100.0 - d.target.prod_weight if i == 0 else 0.0

    def _restore(self, d: ServiceDeployment) -> None:
        d.target.requested = d.target.running = d.target.pending = 0
        if d.sources:
            primary = d.sources[0]
            primary.requested = primary.running = d.desired
            d.service.task_definition = primary.revision.task_definition
            d.service.active_revisions = [primary.revision]

    def _finish(self, d: ServiceDeployment, status: str, at: float) -> None:
        d.status, d.finished_at, d.updated_at = status, at, at
        if status == "STOPPED":
            d.stopped_at = at
        if status == "SUCCESSFUL":
            d.service.active_revisions = [d.target.revision]
            d.status_reason = d.status_reason or "deployment completed successfully"
        elif status == "ROLLBACK_SUCCESSFUL":
            d.status_reason = (d.status_reason or "rollback") + "; rollback completed successfully"
        for attr in ("breaker_status", "alarm_status"):
            if getattr(d, attr) == "MONITORING":
                setattr(d, attr, "MONITORING_COMPLETE")
        self._unwatch(d)

    # -- hooks ------------------------------------------------------------------------------------------------

    def _hooks(self, d: ServiceDeployment, step: Step, at: float) -> str:
        if d.hook_step != d.pc:
            d.hook_step = d.pc
            runs = hooks.start_runs(d, step.name, at, lambda_only=step.kind == "rollback_hooks")
            if not runs:
                return NEXT
            self._set_hooks(d, runs)
            d.updated_at = at
        self._invoke_due(d, at)
        hooks.expire(d.hooks, at)
        verdict = hooks.verdict(d.hooks)
        if verdict == "ok":
            return NEXT
        if verdict == "fail":
            if step.kind == "rollback_hooks":
                d.status_reason = "rollback failed: hook execution failure(s) detected"
                self._finish(d, "ROLLBACK_FAILED", at)
                return BLOCK
            return self._rollback(d, at, self._hook_failure_reason(d), requested=False)
        when = hooks.next_event(d.hooks)
        if when is not None:
            self._schedule(d, max(when, at))
        return BLOCK

    def _invoke_due(self, d: ServiceDeployment, at: float) -> None:
        for _ in range(100):  # bounded: a function answering IN_PROGRESS with callBackDelay 0 loops
            due = [
                r
                for r in d.hooks
                if r.outcome is None and r.due_at is not None and r.due_at <= at and r.due_at < r.expires_at
            ]
            if not due:
                return
            for run in due:
                event = hooks.payload(d, run)
                url = self.invoker.url_for(run.target_arn)
                if url is not None:
                    run.due_at = None
                    self.invoker.submit(url, d.arn, run.hook_id, event)
                else:
                    name = hooks.function_name(run.target_arn or "")
                    hooks.apply_answer(run, hooks.builtin_answer(name, event), run.due_at or at)
                d.updated_at = at

    def remote_answer(self, arn: str, hook_id: str, answer: dict[str, Any] | None, at: float) -> None:
        """Apply the answer of a function called by URL (ignored if the hook is no longer current)."""
        d = self.store.deployments.get(arn)
        if d is None or d.terminal:
            return
        for run in d.hooks:
            if run.hook_id == hook_id and run.outcome is None and run.due_at is None:
                hooks.apply_answer(run, answer, at)
                d.updated_at = at
                self._run(d, at)
                return

    def _hook_failure_reason(self, d: ServiceDeployment) -> str:
        for run in d.hooks:
            if run.status == "TIMED_OUT" and run.outcome == "fail":
                return f"deployment failed: lifecycle hook {run.hook_id} timed out"
            if run.target_type == "PAUSE" and run.status == "FAILED":
                return f"deployment rolled back: lifecycle hook {run.hook_id} was continued with ROLLBACK"
        return HOOK_FAILURE

    def continue_hook(self, d: ServiceDeployment, hook_id: str, action: str, at: float) -> None:
        """ContinueServiceDeployment: resolve a PAUSE hook that is awaiting action."""
        run = next((r for r in d.hooks if r.hook_id == hook_id), None)
        if d.status != "IN_PROGRESS" or run is None or run.status != "AWAITING_ACTION":
            raise invalid(f"hookId {hook_id} is not awaiting action for service deployment {d.arn}")
        run.status, run.outcome = ("FAILED", "fail") if action == "ROLLBACK" else ("SUCCEEDED", "ok")
        d.updated_at = at
        self._run(d, at)

    def _set_hooks(self, d: ServiceDeployment, runs: list[HookRun]) -> None:
        # The runs of the stage before stay in the deployment's history (shown under hook_details_scope=all).
        d.past_hooks += [r for r in d.hooks if r not in d.past_hooks]
        d.hooks = runs

    def _close_hooks(self, d: ServiceDeployment) -> None:
        # Hooks still waiting when the deployment is stopped or rolled back can no longer succeed.
        for run in d.hooks:
            if run.outcome is None:
                run.status, run.outcome, run.due_at = "FAILED", "fail", None

    # -- failures, stops and rollbacks ------------------------------------------------------------------------

    def _health(self, d: ServiceDeployment, at: float) -> str:
        if not d.target.revision.task_definition.broken:
            d.target.running, d.target.pending, d.updated_at = d.desired, 0, at
            return NEXT
        breaker = d.config.get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable"):
            # No breaker: tasks keep failing until the stage limit rolls the deployment back.
            limit = plan.STAGE_LIMIT_SECONDS - plan.SCALE_UP_SECONDS
            d.plan[d.pc + 1 : d.pc + 1] = [Step("wait", seconds=limit), Step("stage_timeout")]
            return NEXT
        d.breaker_status, d.failure_count = "TRIGGERED", breaker_threshold(d.desired)
        reason = "deployment failed: tasks failed to start (circuit breaker triggered)"
        if breaker.get("rollback"):
            return self._rollback(d, at, reason, requested=False)
        return self._stop_failed(d, at, reason)

    def stop(self, d: ServiceDeployment, stop_type: str, at: float) -> None:
        """StopServiceDeployment with stopType ROLLBACK."""
        if stop_type == "ABORT":
            raise invalid("stopType ABORT is not supported; use stopType ROLLBACK")
        if d.status in STOPPING:
            return  # "continues to stop" / "continues the rollback": no error, nothing new
        if d.status not in ACTIVE:
            raise EcsError("ConflictException", f"Service deployment {d.arn} is {d.status} and cannot be stopped")
        self._rollback(d, at, "deployment stopped: rollback requested by StopServiceDeployment", requested=True)
        self._run(d, at)

    def _rollback(self, d: ServiceDeployment, at: float, reason: str, requested: bool) -> str:
        self._close_hooks(d)
        self._unwatch(d)
        d.status = "ROLLBACK_REQUESTED" if requested else "ROLLBACK_IN_PROGRESS"
        d.status_reason = reason
        back_to = d.sources[0].revision.arn if d.sources else d.target.revision.arn
        d.rollback = {"reason": reason, "startedAt": at, "serviceRevisionArn": back_to}
        self._replace_plan(d, plan.rollback_plan(d, requested), at)
        return JUMP

    def _stop_failed(self, d: ServiceDeployment, at: float, reason: str) -> str:
        self._close_hooks(d)
        d.status_reason = reason
        self._finish(d, "STOPPED", at)
        return BLOCK

    def _replace_plan(self, d: ServiceDeployment, steps: list[Step], at: float) -> None:
        d.plan, d.pc, d.hook_step, d.wait_until, d.updated_at = steps, 0, -1, None, at
        self._schedule(d, at)

    # -- forgetting (control API) ---------------------------------------------------------------------------

    def forget(self, d: ServiceDeployment) -> None:
        """Drop a service deployment's record, as if ECS had lost it: Describe answers it in `failures`."""
        self._unwatch(d)
        d.token += 1  # its queued wake-ups are stale now
        self.store.deployments.pop(d.arn, None)
        d.service.deployments = [x for x in d.service.deployments if x is not d]

    def delete_service(self, service: Service) -> None:
        """Delete a service with its service deployments and revisions (DeleteService with force, then gone)."""
        for d in list(service.deployments):
            self.forget(d)
        for arn in [a for a, rev in self.store.revisions.items() if rev.service_arn == service.arn]:
            del self.store.revisions[arn]
        self.store.services.pop((service.cluster.name, service.name), None)

    # -- alarms -----------------------------------------------------------------------------------------------

    def set_alarm(self, name: str, state: str, at: float) -> None:
        """Set a CloudWatch alarm's state; deployments watching it react immediately."""
        self.alarm_states[name] = state
        for arn in list(self._watch.get(name, ())):
            d = self.store.deployments[arn]
            if state != "ALARM":
                d.ignored_alarms.discard(name)
            elif d.status in ACTIVE and name not in d.ignored_alarms:
                self._alarm_fired(d, name, at)

    def _alarm_fired(self, d: ServiceDeployment, name: str, at: float) -> None:
        d.alarm_status = "TRIGGERED"
        d.triggered_alarms.append(name)
        reason = f"deployment failed: alarm(s) detected: {name}"
        if (d.config.get("alarms") or {}).get("rollback"):
            self._rollback(d, at, reason, requested=False)
        else:
            self._stop_failed(d, at, reason)

    def _unwatch(self, d: ServiceDeployment) -> None:
        for name in (d.config.get("alarms") or {}).get("alarmNames") or []:
            self._watch.get(name, set()).discard(d.arn)


def breaker_threshold(desired: int) -> int:
    """ECS's circuit-breaker failure threshold: half the desired count, at least 3, at most 200."""
    return max(3, min(200, math.ceil(desired * 0.5)))


def _copy(value: Any) -> Any:
    # Deployments snapshot the configuration so later UpdateService calls cannot change them.
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
