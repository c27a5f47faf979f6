"""What arrives from Slack, checked before anything trusts it: the signature first, then the shape (pure)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAX_SKEW_SECONDS = 300  # Slack's advice (and Bolt's rule): refuse requests more than five minutes old
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
CONVERSATION_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
SLACK_HOOKS = "hooks.slack.com"
DEFAULT_API_URL = "https://slack.com/api/"


def signature_ok(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None) -> bool:
    """Slack's v0 signature over the raw body, with a fresh numeric timestamp; never raises."""
    stamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not (stamp.isascii() and stamp.isdigit()) or not signature.startswith("v0="):
        return False  # e.g. `abc`, which makes slack_sdk's own check raise (and Bolt answer 500)
    if abs((time.time() if now is None else now) - int(stamp)) > MAX_SKEW_SECONDS:
        return False
    base = b"v0:" + stamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


def decode(body: bytes, content_type: str) -> dict[str, Any] | None:
    """The body as Bolt will read it (form fields, `payload` JSON, or an events JSON object); None if it is not."""
    try:
        text = body.decode("utf-8")
        if "application/json" in content_type:
            data = json.loads(text)
            return data if isinstance(data, dict) else None
        if "application/x-www-form-urlencoded" not in content_type:
            return None
        fields = {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True, strict_parsing=bool(text)).items()}
    except (UnicodeDecodeError, ValueError):
        return None
    if "payload" not in fields:
        return fields
    try:
        payload = json.loads(fields["payload"])
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


# Fields Bolt reads from every body (slack_bolt/request/internals.py, build_context) before any listener runs,
# in the body itself and in the objects it descends into: a wrong type there is an exception inside Bolt (a 500).
_REFS = ("team", "channel", "user", "enterprise")  # an id string, or an object (maybe with an `id`)
_IDS = (
    "type",
    "team_id",
    "channel_id",
    "user_id",
    "enterprise_id",
    "api_app_id",
    "thread_ts",
    "function_execution_id",
    "bot_access_token",
    "context_team_id",
    "context_enterprise_id",
    "response_url",
    "trigger_id",
    "app_installed_team_id",
)
_NESTED = ("event", "message", "previous_message", "item", "assistant_thread", "view", "function_data")


def _envelope_problem(body: Mapping[str, Any], where: str = "", depth: int = 0) -> str | None:
    for key in _REFS:
        if body.get(key) is not None and not isinstance(body[key], str | dict):
            return f"`{where}{key}` must be an id or an object"
    for key in _IDS:
        if body.get(key) is not None and not isinstance(body[key], str):
            return f"`{where}{key}` must be a string"
    install = body.get("is_enterprise_install")
    if install is not None and not isinstance(install, bool | str):
        return f"`{where}is_enterprise_install` must be a boolean"
    grants = body.get("authorizations")
    if grants is not None and not (isinstance(grants, list) and all(isinstance(g, dict) for g in grants)):
        return f"`{where}authorizations` must be a list of objects"
    nested = [(key, body[key]) for key in _NESTED if key in body]  # Bolt tests `in`, then reads: null breaks it
    nested += [("authorizations[0]", grants[0])] if grants else []
    for key, inner in nested:
        if not isinstance(inner, dict):
            return f"`{where}{key}` must be an object"
        problem = _envelope_problem(inner, f"{where}{key}.", depth + 1) if depth < 3 else None
        if problem:
            return problem
    return None


def shape_problem(body: Mapping[str, Any]) -> str | None:
    """Why a verified request is not one Slack would send (the fields Bolt and the listeners read), or None."""
    envelope = _envelope_problem(body)
    if envelope is not None:
        return envelope
    kind = body.get("type")
    if "command" in body and kind is None:
        return _command_problem(body)
    if kind in ("block_actions", "view_submission", "view_closed"):
        return _interaction_problem(body)
    if kind == "event_callback":
        event = body.get("event")
        ok = isinstance(event, dict) and isinstance(event.get("type"), str)
        return None if ok else "an event_callback needs an `event` object with a `type`"
    if kind in ("url_verification", "app_rate_limited") or body.get("ssl_check"):
        return None
    return f"unknown request type {kind!r}" if kind is not None else "neither a command, an interaction nor an event"


def _command_problem(body: Mapping[str, Any]) -> str | None:
    for name in ("command", "user_id", "channel_id", "text"):
        if not isinstance(body.get(name), str):
            return f"a slash command needs `{name}`"
    if not USER_ID.match(body["user_id"]) or not CONVERSATION_ID.match(body["channel_id"]):
        return "a slash command's `user_id` or `channel_id` is not a Slack id"
    return None


def _interaction_problem(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("id"), str) or not USER_ID.match(user["id"]):
        return "an interaction needs `user.id`"
    if body.get("team") is not None and not isinstance(body["team"], dict):
        return "an interaction's `team` is an object"  # the listeners read `team.id`
    if body["type"] == "block_actions":
        actions = body.get("actions")
        if not isinstance(actions, list) or not actions:
            return "block_actions needs `actions`"
        if not all(isinstance(a, dict) and isinstance(a.get("action_id"), str) for a in actions):
            return "every action needs an `action_id`"
        for key in ("channel", "container"):
            if body.get(key) is not None and not isinstance(body[key], dict):
                return f"`{key}` must be an object"
        return None
    view = body.get("view")
    if not isinstance(view, dict) or not isinstance(view.get("callback_id"), str):
        return "a view payload needs `view.callback_id`"
    if not isinstance(view.get("type"), str):
        return "a view payload needs `view.type`"  # Bolt reads it for every submission
    state = view.get("state") if body["type"] == "view_submission" else {"values": {}}
    if not isinstance(state, dict) or not isinstance(state.get("values"), dict):
        return "a view submission needs `view.state.values`"
    return None


def trusted_response_url(url: object, api_url: str) -> bool:
    """True for Slack's own response URLs (https://hooks.slack.com/…), or the configured stand-in's origin.

    A response_url comes from the request body: the bot must never POST to wherever a payload says.
    """
    if not isinstance(url, str):
        return False
    target = urlsplit(url)
    if target.scheme == "https" and target.hostname == SLACK_HOOKS:
        return True
    if api_url == DEFAULT_API_URL:
        return False  # talking to the real Slack: only its hooks host
    base = urlsplit(api_url)
    return (target.scheme, target.netloc) == (base.scheme, base.netloc) and bool(target.netloc)
