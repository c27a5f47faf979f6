"""Build requests to the bot in the shapes Slack sends: slash commands, interactivity, events."""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import time
from typing import Any

from sandbox.slack import workspace as ws

VERIFICATION_TOKEN = "sandbox-verification-token"  # noqa: S105 - Slack's deprecated per-app token, still sent


def user_ref(user_id: str) -> dict[str, str]:
    """The `user` object of an interactivity payload."""
    user = ws.ALL_USERS[user_id]
    return {"id": user.id, "username": user.name, "name": user.name, "team_id": ws.TEAM_ID}


def team_ref() -> dict[str, str]:
    """The `team` object of an interactivity payload."""
    return {"id": ws.TEAM_ID, "domain": ws.TEAM_DOMAIN}


def channel_name(channel: ws.Channel) -> str:
    """What Slack puts in `channel_name`: the name; "directmessage" for a DM; "privategroup" for a private channel
    the app is not in (community reports; Slack does not document it)."""
    if channel.is_im:
        return "directmessage"
    if channel.is_private and not channel.is_mpim and not channel.bot_is_member:
        return "privategroup"
    return channel.name


def command_fields(
    user_id: str, channel: ws.Channel, command: str, text: str, *, response_url: str, trigger_id: str
) -> dict[str, str]:
    """A slash command's form fields, in Slack's order."""
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.TEAM_ID,
        "team_domain": ws.TEAM_DOMAIN,
        "channel_id": channel.id,
        "channel_name": channel_name(channel),
        "user_id": user_id,
        "user_name": ws.ALL_USERS[user_id].name,
        "command": command,
        "text": text,
        "api_app_id": ws.APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }


def find_action(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The (block, element) holding the interactive element with this action_id."""
    for block in blocks:
        candidates = list(block.get("elements") or []) if block.get("type") == "actions" else []
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
    return None


def action_json(block: dict[str, Any], element: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """One entry of `actions`; `value`/`block_id` overrides let tests send tampered clicks."""
    action: dict[str, Any] = {
        "action_id": element.get("action_id"),
        # Slack generates a block_id when the app set none; the same block keeps the same one.
        "block_id": block.get("block_id") or _generated_block_id(block),
        "text": element.get("text"),
        "value": element.get("value"),
        "type": element.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    if element.get("style"):
        action["style"] = element["style"]
    for key in ("value", "block_id"):
        if overrides.get(key) is not None:
            action[key] = overrides[key]
    if action["value"] is None:
        del action["value"]  # a button without a value arrives without one
    return action


def _generated_block_id(block: dict[str, Any]) -> str:
    """A stable stand-in for the random block_id Slack assigns."""
    digest = hashlib.sha256(json.dumps(block, sort_keys=True).encode()).hexdigest()
    return digest[:5].upper()


def message_actions(
    user_id: str,
    channel: ws.Channel,
    message: dict[str, Any],
    *,
    ephemeral: bool,
    action: dict[str, Any],
    response_url: str,
    trigger_id: str,
) -> dict[str, Any]:
    """A `block_actions` payload for a click on a message button."""
    container = {"type": "message", "message_ts": message["ts"], "channel_id": channel.id, "is_ephemeral": ephemeral}
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_ref(user_id),
        "api_app_id": ws.APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id,
        "team": team_ref(),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel.id, "name": channel_name(channel)},
    }
    if not ephemeral:  # Slack does not echo ephemeral messages back
        payload["message"] = {
            k: copy.deepcopy(v) for k, v in message.items() if k not in ("channel", "is_ephemeral", "edited")
        }
    payload.update(state={"values": {}}, response_url=response_url, actions=[action])
    return payload


def view_actions(user_id: str, view: dict[str, Any], action: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    """A `block_actions` payload for a click in the Home tab or a modal."""
    return {
        "type": "block_actions",
        "user": user_ref(user_id),
        "api_app_id": ws.APP_ID,
        "token": VERIFICATION_TOKEN,
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": trigger_id,
        "team": team_ref(),
        "enterprise": None,
        "is_enterprise_install": False,
        "view": copy.deepcopy(view),
        "actions": [action],
    }


def state_values(blocks: list[dict[str, Any]], given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`view.state.values` for the input blocks, from {block_id: {action_id: value}} or {action_id: value}."""
    values: dict[str, dict[str, Any]] = {}
    for block in blocks:
        element = block.get("element")
        if block.get("type") != "input" or not isinstance(element, dict):
            continue
        block_id, action_id = block.get("block_id", ""), element.get("action_id", "")
        by_block = given.get(block_id)
        if isinstance(by_block, dict) and action_id in by_block:
            raw = by_block[action_id]
        else:
            raw = given.get(action_id, _initial(element))
        values[block_id] = {action_id: input_value(element, raw)}
    return values


def _initial(element: dict[str, Any]) -> Any:
    """What an untouched input holds: its initial value or option."""
    if "initial_value" in element:
        return element["initial_value"]
    option = element.get("initial_option")
    return option.get("value") if isinstance(option, dict) else None


def input_value(element: dict[str, Any], raw: Any) -> dict[str, Any]:
    """One input's state in Slack's shape for its element type."""
    kind = element.get("type", "plain_text_input")
    if kind in ("static_select", "radio_buttons"):
        return {"type": kind, "selected_option": _option(element, raw)}
    return {"type": kind, "value": None if raw in (None, "") else str(raw)}


def _option(element: dict[str, Any], raw: Any) -> dict[str, Any] | None:
    """The selected option object, taken from the element's options when it is one of them."""
    if raw in (None, ""):
        return None
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    found = next((o for o in options if o.get("value") == str(raw)), None)
    return copy.deepcopy(found) if found else {"text": {"type": "plain_text", "text": str(raw)}, "value": str(raw)}


def view_submission(user_id: str, view: dict[str, Any], values: dict[str, Any], trigger_id: str) -> dict[str, Any]:
    """A `view_submission` payload for an open modal."""
    submitted = copy.deepcopy(view)
    submitted["state"] = {"values": state_values(view.get("blocks", []), values)}
    return {
        "type": "view_submission",
        "team": team_ref(),
        "user": user_ref(user_id),
        "api_app_id": ws.APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def view_closed(user_id: str, view: dict[str, Any]) -> dict[str, Any]:
    """A `view_closed` payload (sent only for views with notify_on_close)."""
    return {
        "type": "view_closed",
        "team": team_ref(),
        "user": user_ref(user_id),
        "api_app_id": ws.APP_ID,
        "token": VERIFICATION_TOKEN,
        "view": copy.deepcopy(view),
        "is_cleared": False,
        "is_enterprise_install": False,
        "enterprise": None,
    }


def app_home_opened(user_id: str, view: dict[str, Any] | None) -> dict[str, Any]:
    """An Events API `event_callback` carrying `app_home_opened` for the Home tab."""
    now = time.time()
    event: dict[str, Any] = {
        "type": "app_home_opened",
        "user": user_id,
        "channel": ws.dm_channel_id(user_id),
        "tab": "home",
        "event_ts": f"{now:.6f}",
    }
    if view is not None:
        event["view"] = copy.deepcopy(view)
    return {
        "token": VERIFICATION_TOKEN,
        "team_id": ws.TEAM_ID,
        "context_team_id": ws.TEAM_ID,
        "api_app_id": ws.APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": "Ev0" + secrets.token_hex(5).upper(),
        "event_time": int(now),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": ws.TEAM_ID,
                "user_id": ws.BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
