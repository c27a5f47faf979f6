"""Idempotency keys of outbox rows and the payloads saying what each renders: built here and nowhere else (pure).

A key is unique in the outbox table, so queueing the same message twice is impossible; the key also travels in the
message's metadata so the sender can find a message it may already have posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.domain.enums import DeploymentStatus, EventKind, RenderKind
from bot.domain.readmodels import DeploymentView, EventView

# The root key is also matched in SQL (the sender's "did this deployment's root message fail?" check).
ROOT_KEY_PREFIX, ROOT_KEY_SUFFIX = "dep:", ":root"


def root_key(deployment_id: int) -> str:
    """The deployment's root message."""
    return f"{ROOT_KEY_PREFIX}{deployment_id}{ROOT_KEY_SUFFIX}"


def root_update_key(deployment_id: int, version: int) -> str:
    """One edit of the root message, for the deployment row's version (the sender coalesces them)."""
    return f"dep:{deployment_id}:root-update:{version}"


def event_key(deployment_id: int, event_id: int) -> str:
    """The thread reply narrating one event."""
    return f"dep:{deployment_id}:event:{event_id}"


def incident_key(deployment_id: int, event_key_: str) -> str:
    """The incident-channel announcement of an automatic rollback (by the event's natural key)."""
    return f"dep:{deployment_id}:incident:{event_key_}"


def post_pace_key(channel: str) -> str:
    """The pace of chat.postMessage in one channel (about one a second, Slack says), shared by replicas."""
    return f"post:{channel}"


def method_pace_key(method: str) -> str:
    """A hold on one Web API method after Slack answered it 429 with Retry-After."""
    return f"method:{method}"


def render_payload(kind: RenderKind, **fields: Any) -> dict[str, Any]:
    """An outbox payload: what to render at send time, and what with."""
    return {"render": kind.value, **fields}


# How soon a queued message should go, when a channel's turn comes (higher first; a thread keeps its own order).
ROUTINE, WAITED_FOR, ACTIONABLE = 0, 1, 2
_ACT_ON = frozenset({EventKind.HOOK_AWAITING, EventKind.REMINDER, EventKind.ROLLBACK_STARTED, EventKind.START_FAILED})


def priority(render: str | None, event_kind: EventKind | None, detail: Mapping[str, Any] | None = None) -> int:
    """ACTIONABLE for what a person must act on or hear at once (approval needed, a rollback, a failure),
    WAITED_FOR for a root message (someone was just told to follow its thread), else ROUTINE."""
    if render == RenderKind.ROOT:
        return WAITED_FOR
    if render == RenderKind.INCIDENT or event_kind in _ACT_ON:
        return ACTIONABLE
    outcome = (detail or {}).get("outcome")
    if event_kind is EventKind.FINISHED and outcome not in (DeploymentStatus.SUCCEEDED, None):
        return ACTIONABLE
    return ROUTINE


def overtaken(event: EventView, dep: DeploymentView) -> str | None:
    """Why a reply that waited for its turn is no longer worth posting (None: post it).

    Only a call to act goes stale: "approval needed" or a reminder for a hook someone already decided, that no
    longer waits, or whose deployment ended. Everything else is history and is told, late or not.
    """
    if event.kind not in (EventKind.HOOK_AWAITING, EventKind.REMINDER):
        return None
    hook = event.detail.get("hook_id")
    if any(d.hook_id == hook for d in dep.decisions):
        return "someone already decided on that pause"
    if not dep.status.is_active:
        return "the deployment has ended"
    if hook not in {h.hook_id for h in dep.awaiting}:
        return "the pause no longer waits"
    return None
