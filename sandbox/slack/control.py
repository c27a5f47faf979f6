"""The control API: act as a Slack user towards the bot, and the response_url endpoint."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from sandbox.slack import payloads
from sandbox.slack import workspace as ws
from sandbox.slack.blockkit import BlockError, check_view
from sandbox.slack.delivery import FORM, JSON, Delivery, deliver, form_body, payload_body
from sandbox.slack.faults import Fault
from sandbox.slack.responses import Responses
from sandbox.slack.socket import SocketHub
from sandbox.slack.state import Message, ResponseUrl, Store
from sandbox.slack.webapi import WebApi, bot_message, message_content

Result = tuple[int, dict[str, Any]]
SLACKBOT = "USLACKBOT"


@dataclass
class Config:
    """Where the bot listens and how requests to it are signed; what the page's panel offers."""

    bot_url: str | None
    signing_secret: str
    panel: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    hint: str = "/deploy help"  # the command the page suggests in an empty channel and above the composer


class BadRequest(Exception):
    """A control call the stand-in cannot act on; becomes a 4xx answer."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


def need_user(body: dict[str, Any]) -> str:
    """The acting user: one of the seeded humans."""
    user = str(body.get("user", ""))
    if user not in ws.ALL_USERS or ws.ALL_USERS[user].is_bot:
        raise BadRequest("user_not_found")
    return user


def need_channel(body: dict[str, Any]) -> ws.Channel:
    """The channel named in the body (id, name or user id); #deploys by default."""
    channel = ws.find_channel(str(body.get("channel") or ws.DEPLOYS_CHANNEL))
    if channel is None:
        raise BadRequest("channel_not_found")
    if channel.is_archived:
        raise BadRequest("is_archived")  # nobody can type in an archived channel
    return channel


class Control:
    """Implements `/_sandbox/*` actions on top of the store and the Web API."""

    def __init__(self, store: Store, api: WebApi, config: Config, hub: SocketHub) -> None:
        self.store = store
        self.api = api
        self.config = config
        self.hub = hub
        self.responses = Responses(store, self._respond_with)

    def _send(self, kind: str, payload: dict[str, Any]) -> Delivery:
        """Deliver a request within Slack's time limit: over the app's socket if it has one, else signed HTTP."""
        timeout = self.store.settings.ack_timeout
        if self.hub.connected:
            return self.hub.deliver(kind, payload, timeout)
        if kind == "slash_commands":
            body, content_type = form_body(payload), FORM
        elif kind == "interactive":
            body, content_type = payload_body(payload), FORM
        else:
            body, content_type = json.dumps(payload).encode(), JSON
        return deliver(self.config.bot_url, self.config.signing_secret, body, content_type, timeout)

    def _response_url(self, user: str, channel: str, message_ts: str | None, ephemeral: bool) -> str:
        """A fresh response URL pointing back at this stand-in."""
        rid = self.store.issue_response_url(user, channel, message_ts, ephemeral)
        return f"{self.config.base_url}/_sandbox/response/{rid}"

    def _slackbot_says(self, user: str, channel: str, text: str) -> Message:
        """An ephemeral from Slackbot, as Slack shows when an app fails to answer."""
        msg: Message = {"type": "message", "user": SLACKBOT, "text": text}
        return self.store.add_ephemeral(user, channel, msg)

    def show(self, user: str, channel: str, data: dict[str, Any], thread_ts: str | None = None) -> Message:
        """Show a response message: in the channel for `in_channel`, else only to the user."""
        text, blocks = message_content(data)
        msg = bot_message(text, blocks, data.get("thread_ts") or thread_ts)
        if data.get("response_type") == "in_channel":
            return self.store.add_message(channel, msg)
        return self.store.add_ephemeral(user, channel, msg)

    def command(self, body: dict[str, Any]) -> Result:
        """Send the bot a slash command, then show its ack as Slack would."""
        user, channel = need_user(body), need_channel(body)
        command = str(body.get("command") or "/deploy")
        fields = payloads.command_fields(
            user,
            channel,
            command,
            str(body.get("text", "")),
            response_url=self._response_url(user, channel.id, None, False),
            trigger_id=self.store.issue_trigger(user),
        )
        delivery = self._send("slash_commands", fields)
        shown = self._show_ack(user, channel.id, command, delivery)
        return 200, {"ok": True, **delivery.as_dict(), "shown": shown, "request": fields}

    def _show_ack(self, user: str, channel: str, command: str, delivery: Delivery) -> Message | None:
        """An ack with content becomes a message; a failure becomes Slackbot's complaint."""
        if delivery.error:
            return self._slackbot_says(user, channel, f'{command} failed with the error "{delivery.error}"')
        data = delivery.json()
        if data is None and delivery.body.strip():
            data = {"text": delivery.body}  # a plain-text ack is shown as it is
        if not isinstance(data, dict) or not (data.get("text") or data.get("blocks")):
            return None
        try:
            return self.show(user, channel, data)
        except BlockError as exc:
            return self._slackbot_says(user, channel, f'{command} failed with the error "{exc.code}"')

    def click(self, body: dict[str, Any]) -> Result:
        """Click a button on a message (or, with `view_id`, in a Home tab or modal)."""
        user = need_user(body)
        if body.get("view_id"):
            return self._click_in_view(user, body)
        channel = need_channel(body)
        ts = str(body.get("message_ts", ""))
        message = self.store.find_message(channel.id, ts)
        ephemeral = message is None
        message = message or self.store.find_ephemeral(user, ts)
        if message is None:
            raise BadRequest("message_not_found", 404)
        action = self._action(message.get("blocks", []), body)
        payload = payloads.message_actions(
            user,
            channel,
            message,
            ephemeral=ephemeral,
            action=action,
            response_url=self._response_url(user, channel.id, ts, ephemeral),
            trigger_id=self.store.issue_trigger(user),
        )
        delivery = self._send("interactive", payload)
        return 200, {"ok": True, **delivery.as_dict(), "request": payload}

    def _click_in_view(self, user: str, body: dict[str, Any]) -> Result:
        """A click inside a view: the payload carries the view, not a message."""
        view = self.store.views.get(str(body["view_id"]))
        if view is None or self.store.view_owner.get(view["id"]) != user:
            raise BadRequest("view_not_found", 404)
        action = self._action(view.get("blocks", []), body)
        payload = payloads.view_actions(user, view, action, self.store.issue_trigger(user))
        delivery = self._send("interactive", payload)
        return 200, {"ok": True, **delivery.as_dict(), "request": payload}

    @staticmethod
    def _action(blocks: list[dict[str, Any]], body: dict[str, Any]) -> dict[str, Any]:
        """The clicked element as an `actions` entry, with any overrides applied."""
        found = payloads.find_action(blocks, str(body.get("action_id", "")))
        if found is None:
            raise BadRequest("action_not_found", 404)
        return payloads.action_json(found[0], found[1], body)

    def submit_view(self, body: dict[str, Any]) -> Result:
        """Submit an open modal and apply the bot's `response_action`."""
        user, view_id = need_user(body), str(body.get("view_id", ""))
        if view_id not in self.store.modals.get(user, []):
            raise BadRequest("view_not_found", 404)
        view = self.store.views[view_id]
        payload = payloads.view_submission(user, view, dict(body.get("values") or {}), self.store.issue_trigger(user))
        with self.store.lock:
            view["state"] = payload["view"]["state"]  # keeps what was typed if the modal stays open
        delivery = self._send("interactive", payload)
        outcome = self._apply_submission(user, view_id, delivery)
        return 200, {"ok": True, **delivery.as_dict(), "outcome": outcome, "request": payload}

    def _apply_submission(self, user: str, view_id: str, delivery: Delivery) -> str:
        """What the modal does next: closed, errors, update, push, clear, or failed."""
        if delivery.error:
            return "failed"
        data = delivery.json()
        action = data.get("response_action") if isinstance(data, dict) else None
        with self.store.lock:
            stack = self.store.modals.setdefault(user, [])
            if action == "errors":
                self.store.view_errors[view_id] = dict(data.get("errors") or {})
            elif action in ("update", "push") and isinstance(data, dict):
                try:
                    self._replace_or_push(user, view_id, action, data.get("view"))
                except BlockError:
                    action = "invalid_view"  # Slack keeps the modal and shows a generic error
            elif action == "clear":
                stack.clear()
            else:
                action = "closed"
                if view_id in stack:
                    stack.remove(view_id)
            self.store.touch()
        return str(action)

    def _replace_or_push(self, user: str, view_id: str, action: str, view: Any) -> None:
        """`response_action: update` replaces the modal; `push` stacks a new one on it."""
        checked = check_view(view, ("modal",))
        if action == "update":
            self.api.store_view(checked, user, view_id)
            self.store.view_errors.pop(view_id, None)
            return
        pushed = self.api.store_view(checked, user)
        pushed["previous_view_id"] = view_id
        pushed["root_view_id"] = self.store.views[view_id]["root_view_id"]
        self.store.modals[user].append(pushed["id"])

    def close_view(self, body: dict[str, Any]) -> Result:
        """The user closes a modal; the bot hears of it only if it asked (notify_on_close)."""
        user, view_id = need_user(body), str(body.get("view_id", ""))
        with self.store.lock:
            stack = self.store.modals.get(user, [])
            if view_id not in stack:
                raise BadRequest("view_not_found", 404)
            stack.remove(view_id)
            view = self.store.views[view_id]
            self.store.touch()
        if not view.get("notify_on_close"):
            return 200, {"ok": True, "status": None}
        delivery = self._send("interactive", payloads.view_closed(user, view))
        return 200, {"ok": True, **delivery.as_dict()}

    def app_home_opened(self, body: dict[str, Any]) -> Result:
        """The user opens the bot's Home tab: an Events API delivery."""
        user = need_user(body)
        home = self.store.user_views(user)["home"]
        payload = payloads.app_home_opened(user, home)
        delivery = self._send("events_api", payload)
        return 200, {"ok": True, **delivery.as_dict(), "request": payload}

    def post(self, body: dict[str, Any]) -> Result:
        """A user writes a plain message (the bot is not told: it subscribes to no message events)."""
        user, channel = need_user(body), need_channel(body)
        text = str(body.get("text", "")).strip()
        if not text:
            raise BadRequest("no_text")
        msg: Message = {"type": "message", "user": user, "team": ws.TEAM_ID, "text": text}
        if body.get("thread_ts"):
            msg["thread_ts"] = str(body["thread_ts"])
        stored = self.store.add_message(channel.id, msg)
        return 200, {"ok": True, "channel": channel.id, "ts": stored["ts"]}

    def settings(self, body: dict[str, Any]) -> Result:
        """Switch rate limiting, the ack timeout, scopes, token errors, latency, limits, faults; move or stop time."""
        settings = self.store.settings
        with self.store.lock:
            if "rate_limit" in body:
                settings.rate_limit = bool(body["rate_limit"])
                self.store.last_post.clear()
            for key in ("rate_interval", "ack_timeout", "latency", "latency_spread"):
                if key in body:
                    setattr(settings, key, float(body[key]))
            if "update_tier_per_minute" in body:
                settings.update_tier_per_minute = max(0, int(body["update_tier_per_minute"] or 0))
                self.store.updates.clear()
            for key in ("blocks_char_limit", "update_text_limit"):
                if key in body:
                    setattr(settings, key, int(body[key]))
            if "latency_methods" in body:
                settings.latency_methods = frozenset(str(m) for m in body["latency_methods"] or [])
            if "scopes" in body:
                settings.scopes = frozenset(str(s) for s in body["scopes"])
            if "response_url_errors" in body:
                if body["response_url_errors"] not in ("json", "text"):
                    raise BadRequest("invalid_response_url_errors")
                settings.response_url_errors = str(body["response_url_errors"])
            if "response_url_faults_spend_use" in body:
                settings.response_url_faults_spend_use = bool(body["response_url_faults_spend_use"])
            if "token_error" in body:
                settings.token_error = str(body["token_error"]) if body["token_error"] else None
            if "faults" in body:
                seed = int(body["fault_seed"]) if body.get("fault_seed") is not None else None
                self.store.faults.set([Fault.of(dict(f)) for f in body["faults"] or []], seed)
            if "freeze_clock" in body:
                settings.frozen_at = time.time() if body["freeze_clock"] else None
            settings.clock_offset += float(body.get("advance_clock", 0))
            self.store.touch()
        return 200, {"ok": True, "settings": settings.as_dict(), "faults": self.store.faults.as_list()}

    def panel(self, index: str) -> Result:
        """Press a sandbox panel button: the stand-in posts its body to its URL (no CORS for the page)."""
        if not index.isdigit() or int(index) >= len(self.config.panel):
            raise BadRequest("panel_item_not_found", 404)
        item = self.config.panel[int(index)]
        body = json.dumps(item.get("body") or {}).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL comes from start(panel=...), not a request
            str(item["url"]), data=body, headers={"Content-Type": JSON}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - as above
                return 200, {"ok": True, "status": resp.status, "body": resp.read().decode(errors="replace")}
        except urllib.error.HTTPError as exc:
            return 200, {"ok": True, "status": exc.code, "body": exc.read().decode(errors="replace")}
        except (urllib.error.URLError, OSError) as exc:
            return 502, {"ok": False, "error": f"unreachable: {exc}"}

    def _respond_with(self, entry: ResponseUrl, data: dict[str, Any]) -> None:
        """Delete, replace or add a message according to a response_url POST's body."""
        user, channel, original, ephemeral = entry.user, entry.channel, entry.message_ts, entry.ephemeral
        if data.get("delete_original") and original:
            if ephemeral:
                self.store.remove_ephemeral(user, original)
            else:
                self.store.delete_message(channel, original)
            return
        text, blocks = message_content(data)
        if data.get("replace_original") and original:
            with self.store.lock:
                target = (
                    self.store.find_ephemeral(user, original)
                    if ephemeral
                    else self.store.find_message(channel, original)
                )
                if target is not None:
                    target["text"] = text
                    target.pop("blocks", None)  # the reply replaces the whole message
                    if blocks:
                        target["blocks"] = blocks
                    self.store.touch()
                    return
        self.show(user, channel, data)
