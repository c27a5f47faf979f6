"""Starting a stored deployment on ECS exactly once: a temporary ECS fault queues it, never refuses it.

UpdateService has no client token: sent twice, it starts two deployments (the second stops the first). So the
first time the bot may have sent it (`asked_at`, written before the call) every later attempt asks ECS first
whether a deployment of the target was created since, and sends UpdateService again only if none was. The
gateway itself never resends a change after a 5xx or a timeout (bot/ecs/gateway.py), only after a throttle.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.db.sessions import transaction, written_again
from bot.domain import preflight
from bot.domain.catalog.loader import ServiceConfig
from bot.domain.catalog.schema import (
    DEFAULT_APPROVAL_TIMEOUT,
    DEFAULT_CANARY_PERCENT,
    DEFAULT_LINEAR_STEP_PERCENT,
    DEFAULT_TIMEOUT_ACTION,
)
from bot.domain.enums import DeploymentStatus, Strategy, TimeoutAction
from bot.ecs.gateway import EcsError, EcsUnavailable, ServiceInfo, StartSpec
from bot.ecs.requests import replace_image
from bot.engine.answers import Answer
from bot.logs import get_logger
from models import Deployment

if TYPE_CHECKING:
    from bot.engine.deployments import Deployments

log = get_logger(__name__)
# ListServiceDeployments filters on createdAt; allow for clock skew between us and ECS.
CLOCK_SKEW = timedelta(seconds=30)
# A start ECS keeps refusing as unavailable for this long is given up, and the requester told.
START_GIVES_UP_AFTER = timedelta(minutes=30)
QUEUED = "⏳ ECS is throttling; I'll start it as soon as it lets me."


class NeedsLoadBalancer(Exception):
    """The service turned out headless (read after a delay) and the strategy shifts traffic in steps."""


@dataclass(frozen=True)
class _Plan:
    image: str | None  # as asked (`:1.3.0`) until the target is registered
    taskdef: str | None
    target_ready: bool  # taskdef_to is the task definition to deploy (an image is registered once)
    asked_at: datetime | None  # the first moment an UpdateService may have reached ECS
    strategy: Strategy


def retry_delay(attempts: int) -> timedelta:
    """How long a queued start waits before its next attempt: 5 s, doubling, at most a minute."""
    return timedelta(seconds=min(60, 5 * 2 ** max(0, attempts - 1)))


class Starts:
    """Starts (and resumes) deployments on ECS; `Deployments` owns the rows, this owns the calls."""

    def __init__(self, deployments: Deployments) -> None:
        self.d = deployments

    def start(self, dep_id: int, service: ServiceConfig, info: ServiceInfo | None) -> Answer:
        """Start once; ECS throttling or failing leaves it queued for the reconciler, answered as a delay."""
        try:
            arn = self._start(dep_id, service, info)
        except EcsUnavailable as exc:
            return self._queued(dep_id, service, exc)
        except NeedsLoadBalancer as exc:
            return self.d.fail(dep_id, str(exc))
        except EcsError as exc:
            return self.d.fail(dep_id, f"ECS refused the deployment: {exc.code}: {exc.message}")
        if arn:
            self.d.attach(dep_id, arn)
        return Answer(
            f"Deployment #{dep_id} of `{service.key}` is starting. Follow it in the thread.", deployment_id=dep_id
        )

    def resume(self, dep_id: int) -> bool:
        """The reconciler's retry of a queued start; True while it is still queued."""
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            queued = dep.status is DeploymentStatus.REQUESTED and bool(dep.tracked.get("start_queued"))
            key = dep.service_key
        service = self.d.catalog.get(key)
        if not queued:
            return False
        if service is None:
            self.d.fail(dep_id, f"`{key}` is no longer in the catalog; nothing was started.")
            return False
        self.start(dep_id, service, None)
        return self._still_queued(dep_id)

    def _start(self, dep_id: int, service: ServiceConfig, info: ServiceInfo | None) -> str | None:
        plan = self._plan(dep_id)
        if plan.asked_at is not None and plan.target_ready and plan.taskdef:
            # An earlier UpdateService may have landed (a 5xx, a timeout, a crash): never send a second blindly.
            landed = self.d.ecs.find_service_deployment(service, plan.taskdef, plan.asked_at)
            if landed and self.d.arn_taken(landed, dep_id):
                landed = None  # an earlier deployment of ours, its createdAt on ECS's clock inside our skew
            if landed:
                self._save(dep_id, update_sent=True, start_queued=False)
                log.info("an earlier UpdateService had landed", deployment_id=dep_id, ecs_arn=landed)
                return landed
        info = info or self.d.ecs.read_service(service)
        self._adopt(dep_id, service, info, plan.strategy)
        target = plan.taskdef if plan.target_ready and plan.taskdef else self._target(dep_id, service, info, plan)
        spec = self._spec(dep_id, target)
        asked_at = plan.asked_at or self.d.clock() - CLOCK_SKEW
        self._save(dep_id, asked_at=asked_at.isoformat())  # from here on, a retry asks ECS first
        arn = self.d.ecs.start_deployment(service, spec, info)
        self._save(dep_id, update_sent=True, start_queued=False)
        if arn is not None:
            return arn
        try:  # the response did not name it: look for it (in any status)
            return self.d.ecs.find_service_deployment(service, target, asked_at)
        except EcsUnavailable:
            return None  # ECS has it; the reconciler finds its ARN on its next pass

    def _queued(self, dep_id: int, service: ServiceConfig, exc: EcsUnavailable) -> Answer:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            attempts = int(dep.tracked.get("start_attempts") or 0) + 1
            dep.tracked = {**dep.tracked, "start_queued": True, "start_attempts": attempts}
            waited = self.d.clock() - dep.created_at
        if waited > START_GIVES_UP_AFTER:
            minutes = int(START_GIVES_UP_AFTER.total_seconds() // 60)
            return self.d.fail(dep_id, f"ECS was unavailable for {minutes} minutes ({exc.code}); nothing was started.")
        log.warning("ECS unavailable: the start is queued", deployment_id=dep_id, attempts=attempts, error=str(exc))
        return Answer(
            f"{QUEUED} Deployment #{dep_id} of `{service.key}` is queued; follow it in the thread.",
            deployment_id=dep_id,
        )

    def _still_queued(self, dep_id: int) -> bool:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            return dep.status is DeploymentStatus.REQUESTED and bool(dep.tracked.get("start_queued"))

    def _plan(self, dep_id: int) -> _Plan:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            asked = dep.tracked.get("asked_at")
            return _Plan(
                image=dep.image_to,
                taskdef=dep.taskdef_to,
                target_ready=bool(dep.tracked.get("target_ready")),
                asked_at=datetime.fromisoformat(asked) if isinstance(asked, str) else None,
                strategy=dep.strategy,
            )

    def _adopt(self, dep_id: int, service: ServiceConfig, info: ServiceInfo, strategy: Strategy) -> None:
        """What ECS runs now, when the request could not read it (ECS was unavailable then)."""
        refusal = preflight.check_request(service.key, strategy, info)  # the request path could not check it
        if refusal is not None:
            raise NeedsLoadBalancer(refusal.reason)
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            if dep.taskdef_from is None:
                dep.taskdef_from, dep.image_from = info.task_definition_arn, info.image
                dep.tracked = {**dep.tracked, "headless": info.headless}

    def _target(self, dep_id: int, service: ServiceConfig, info: ServiceInfo, plan: _Plan) -> str:
        image: str | None
        if plan.image:
            image = replace_image(info.image, plan.image)
            target = self.d.ecs.register_image(service, info.task_definition_arn, image)
        elif plan.taskdef:
            target, image = plan.taskdef, None
        else:
            target, image = info.task_definition_arn, info.image
        self._save(dep_id, taskdef_to=target, image_to=image, target_ready=True, update_sent=False)
        return target

    def _spec(self, dep_id: int, target: str) -> StartSpec:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            return StartSpec(
                strategy=dep.strategy,
                task_definition=target,
                canary_percent=dep.canary_percent or DEFAULT_CANARY_PERCENT,
                canary_bake=timedelta(seconds=dep.canary_bake_seconds or 0),
                linear_step_percent=dep.linear_step_percent or DEFAULT_LINEAR_STEP_PERCENT,
                step_bake=timedelta(seconds=dep.step_bake_seconds or 0),
                bake=timedelta(seconds=dep.bake_seconds or 0),
                approval_stages=tuple(dep.approval_stages),
                approval_timeout=_stored_duration(dep.tracked.get("approval_timeout"), DEFAULT_APPROVAL_TIMEOUT),
                timeout_action=TimeoutAction(dep.tracked.get("timeout_action") or DEFAULT_TIMEOUT_ACTION),
            )

    def _save(self, dep_id: int, **fields: object) -> None:
        """Columns by name; anything else goes into `tracked` (written again after another replica's write)."""
        written_again(lambda: self._write(dep_id, fields))

    def _write(self, dep_id: int, fields: dict[str, object]) -> None:
        with transaction(self.d.sessions) as session:
            dep = session.get_one(Deployment, dep_id)
            extra: dict[str, object] = {}
            for name, value in fields.items():
                if name in ("taskdef_to", "image_to"):
                    setattr(dep, name, value)
                else:
                    extra[name] = value
            dep.tracked = {**dep.tracked, **extra}


def _stored_duration(seconds: object, default: timedelta) -> timedelta:
    return timedelta(seconds=seconds) if isinstance(seconds, int) else default
