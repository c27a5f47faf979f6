"""Deployments ECS has forgotten (pure): a service deployment DescribeServiceDeployments no longer finds.

Deleting a service deletes its service deployments, and ECS then answers their ARNs in `failures` (MISSING).
One such answer could be a passing inconsistency, so a deployment ends only after `LOST_AFTER` passes in a row
found it missing; a pass that finds it again starts the count afresh.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.machine.state import Event, Tracked

LOST_AFTER = 3  # consecutive reconcile passes (DEPLOYBOT_POLL_SECONDS apart) that found the ARN missing
LOST_REASON = "MISSING: DescribeServiceDeployments no longer finds this service deployment"


def missing_pass(tracked: Tracked, passes: int, now: datetime) -> tuple[Tracked, list[Event]]:
    """After `passes` consecutive passes found the deployment missing: unchanged, or LOST with its FINISHED event."""
    if passes < LOST_AFTER or "finished" in tracked.emitted:
        return tracked, []
    detail = {
        "outcome": DeploymentStatus.LOST.value,
        "reason": LOST_REASON,
        "missing_passes": passes,
        "ecs_status": tracked.ecs_status.value if tracked.ecs_status else None,
        # The bot's verdict, on the bot's clock: no ECS time and no duration (docs/ARCHITECTURE.md, "Clocks").
        "lost_at": now.isoformat(),
    }
    stage = tracked.lifecycle_stage.value if tracked.lifecycle_stage else None
    event = Event(EventKind.FINISHED, "finished", stage, detail)
    state = replace(tracked, status=DeploymentStatus.LOST, emitted=(*tracked.emitted, event.key))
    return state, [event]
