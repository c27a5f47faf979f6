"""Pauses nobody can see: an approval request Slack could not deliver must not time out into CONTINUE.

When the thread reply asking for approval failed for good (channel archived, bot removed…) or has waited unsent
for `UNSEEN_AFTER` (Slack refusing the bot), a pause whose timeout action is CONTINUE is rolled back by the bot
itself, and the requester is told in a DM. Pauses that time out into ROLLBACK are left to ECS: that is safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.store import queue
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import DeploymentStatus, OutboxState, RenderKind, TimeoutAction
from bot.domain.outbox import event_key, render_payload
from bot.domain.readmodels import awaiting_hooks
from models import Decision, Deployment, DeploymentEvent, Outbox

UNSEEN_AFTER = timedelta(minutes=10)
SYSTEM_USER = "deploybot"
UNSEEN_REASON = "the approval request could not be shown in Slack, so it must not continue unapproved"


def unseen_pauses(session: Session, catalog: Catalog, ids: Sequence[int], now: datetime) -> list[tuple[int, str]]:
    """(deployment, hook) of CONTINUE-on-timeout pauses whose approval request never reached Slack."""
    continuing: list[tuple[int, str]] = []
    stmt = select(Deployment.id, Deployment.service_key, Deployment.tracked).where(
        Deployment.id.in_(ids), Deployment.status == DeploymentStatus.AWAITING_APPROVAL
    )
    for dep_id, service_key, tracked in session.execute(stmt):
        service = catalog.get(service_key)
        default = service.timeout_action if service is not None else TimeoutAction.ROLLBACK
        continuing += [
            (dep_id, hook.hook_id)
            for hook in awaiting_hooks(tracked)
            if TimeoutAction(hook.timeout_action or default) is TimeoutAction.CONTINUE
        ]
    if not continuing:
        return []
    stmt = select(Decision.deployment_id, Decision.hook_id).where(
        Decision.deployment_id.in_(sorted({d for d, _ in continuing}))
    )
    decided = {(d, h) for d, h in session.execute(stmt)}
    return [(d, h) for d, h in continuing if (d, h) not in decided and _unseen(session, d, h, now)]


def _unseen(session: Session, dep_id: int, hook_id: str, now: datetime) -> bool:
    event_id = session.scalar(
        select(DeploymentEvent.id).where(
            DeploymentEvent.deployment_id == dep_id, DeploymentEvent.key == f"hook:{hook_id}:AWAITING_ACTION"
        )
    )
    if event_id is None:
        return False
    row = session.scalars(select(Outbox).where(Outbox.idempotency_key == event_key(dep_id, event_id))).first()
    if row is None or row.state is OutboxState.SENT:
        return False
    return row.state is OutboxState.FAILED or row.created_at < now - UNSEEN_AFTER


def tell_requester(session: Session, dep: Deployment, hook_id: str, now: datetime) -> None:
    """A DM to the requester: why the bot rolled their deployment back."""
    text = (
        f"↩️ I couldn't show the approval request for deployment #{dep.id} of `{dep.service_key}` in "
        f"<#{dep.channel_id}>, and it was set to continue on its own at the timeout, so I rolled it back instead. "
        f"`/deploy status {dep.service_key}` shows where it is."
    )
    queue(
        session,
        key=f"dep:{dep.id}:unseen:{hook_id}",
        channel_id=dep.requested_by,
        payload=render_payload(RenderKind.MESSAGE, text=text),
        deployment_id=dep.id,
        at=now,
    )
