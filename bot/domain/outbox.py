"""Idempotency keys of outbox rows and the payloads saying what each renders: built here and nowhere else (pure).

A key is unique in the outbox table, so queueing the same message twice is impossible; the key also travels in the
message's metadata so the sender can find a message it may already have posted.
"""

from __future__ import annotations

from typing import Any

from bot.domain.enums import RenderKind

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
