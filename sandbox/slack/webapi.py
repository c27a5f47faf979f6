"""The Web API methods the bot uses, with Slack's response shapes and error codes."""

from __future__ import annotations

import json
import math
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from sandbox.slack import workspace as ws
from sandbox.slack.access import member_refusal, missing_scope, post_refusal
from sandbox.slack.blockkit import MAX_TEXT_CHARS, BlockError, check_blocks, check_view
from sandbox.slack.history import History, message_metadata
from sandbox.slack.socket import SocketHub
from sandbox.slack.state import Message, Store

Reply = tuple[int, dict[str, Any], dict[str, str]]
Params = dict[str, Any]


def ok(**fields: Any) -> Reply:
    """A successful Web API answer."""
    return 200, {"ok": True, **fields}, {}


def fail(error: str, **fields: Any) -> Reply:
    """A failed Web API answer: Slack still answers HTTP 200 with ok=false."""
    return 200, {"ok": False, "error": error, **fields}, {}


def block_fail(exc: BlockError) -> Reply:
    """Refused blocks, with the details Slack puts in `errors` and (prefixed `[ERROR]`) `response_metadata`."""
    return fail(exc.code, errors=exc.messages, response_metadata={"messages": [f"[ERROR] {m}" for m in exc.messages]})


def bot_message(text: str, blocks: list[dict[str, Any]] | None, thread_ts: str | None) -> Message:
    """A message as Slack stores one the bot posted."""
    msg: Message = {
        "type": "message",
        "user": ws.BOT_USER_ID,
        "bot_id": ws.BOT_ID,
        "app_id": ws.APP_ID,
        "team": ws.TEAM_ID,
        "text": text,
        "bot_profile": {
            "id": ws.BOT_ID,
            "app_id": ws.APP_ID,
            "name": ws.BOT.real_name,
            "team_id": ws.TEAM_ID,
            "deleted": False,
        },
    }
    if blocks:
        msg["blocks"] = blocks
    if thread_ts:
        msg["thread_ts"] = thread_ts
    return msg


def message_content(params: Params, blocks_char_limit: int = 13_000) -> tuple[str, list[dict[str, Any]] | None]:
    """Text and checked blocks of a post; raises BlockError with `no_text`/`msg_blocks_too_long` too."""
    text = str(params.get("text") or "")
    blocks = check_blocks(params["blocks"]) if params.get("blocks") not in (None, "") else None
    if not text and not blocks and not params.get("attachments"):
        raise BlockError("no_text", [])
    if blocks and len(json.dumps(blocks, ensure_ascii=False)) > blocks_char_limit:
        raise BlockError("msg_blocks_too_long", [])
    return text[:MAX_TEXT_CHARS], blocks  # Slack truncates `text` beyond 40,000 characters


class WebApi:
    """Dispatches `POST /api/<method>` calls onto the store."""

    def __init__(
        self,
        store: Store,
        bot_token: str,
        base_url: Callable[[], str],
        *,
        app_token: str = "xapp-1-A0DEPLOYBOT-1-sandbox",  # noqa: S107 - a loopback-only test value
        hub: SocketHub | None = None,
    ) -> None:
        self.store = store
        self.bot_token = bot_token
        self.app_token = app_token
        self.hub = hub
        self.base_url = base_url
        self.methods: dict[str, Callable[[Params], Reply]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.post_message,
            "chat.update": self.update,
            "chat.postEphemeral": self.post_ephemeral,
            "chat.getPermalink": self.permalink,
            "views.open": self.views_open,
            "views.publish": self.views_publish,
            "views.update": self.views_update,
            "users.info": self.users_info,
            "usergroups.users.list": self.usergroup_users,
            "conversations.info": self.conversations_info,
            **History(store).methods(),
        }

    def call(self, method: str, params: Params, bearer: str | None) -> Reply:
        """Authenticate, check scopes, apply injected faults and latency, run the method, and log the call."""
        with self.store.lock:
            self.store.in_flight[method] += 1
        try:
            return self._call(method, params, bearer)
        finally:
            with self.store.lock:
                self.store.in_flight[method] -= 1

    def _call(self, method: str, params: Params, bearer: str | None) -> Reply:
        token = bearer or params.pop("token", None)
        params.pop("token", None)
        settings = self.store.settings
        slowed = not settings.latency_methods or method in settings.latency_methods
        if slowed and settings.latency + settings.latency_spread > 0:
            # Before the work, like a slow network: a caller that gives up (or dies) meanwhile still gets it done.
            # A spread lets a call begun later be stored first, as calls of varying length do.
            time.sleep(settings.latency + random.uniform(0, settings.latency_spread))
        if not token:
            reply = fail("not_authed")
        elif method == "apps.connections.open":
            reply = self.connections_open(token)
        elif token == self.app_token:
            reply = fail("not_allowed_token_type")  # an app-level token opens sockets and nothing else
        elif token != self.bot_token:
            reply = fail("invalid_auth")
        elif settings.token_error:
            reply = fail(settings.token_error)
        elif method not in self.methods:
            reply = fail("unknown_method")
        else:
            reply = self._run(method, params, settings.scopes)
        status, body, headers = reply
        if token == self.bot_token:
            # Every Web API response names the token's scopes (what `deploybot check` compares with its needs).
            headers = {**headers, "x-oauth-scopes": ",".join(sorted(settings.scopes))}
        self.store.log_call(method, params, status, body)
        return status, body, headers

    def _run(self, method: str, params: Params, granted: frozenset[str]) -> Reply:
        channel = ws.bot_channel(str(params.get("channel", ""))) if params.get("channel") else None
        lacking = missing_scope(method, channel, granted)
        if lacking is not None:
            return fail("missing_scope", needed=lacking, provided=",".join(sorted(granted)))
        # chat.postMessage is limited per channel, every other method per workspace.
        hold = f"{method} {channel.id}" if method == "chat.postMessage" and channel is not None else method
        early = self.store.faults.held(hold)
        if early is not None:
            return early
        fault = self.store.faults.take(method)
        if fault is not None and fault.status == 429:
            self.store.faults.hold(hold, fault.retry_after)
        if fault is not None and not fault.after_store:
            return fault.reply()
        reply = self.methods[method](params)
        return fault.reply() if fault is not None else reply

    def connections_open(self, token: str) -> Reply:
        """apps.connections.open: only with the app-level token, which is good for nothing else."""
        if token != self.app_token:
            return fail("not_allowed_token_type" if token == self.bot_token else "invalid_auth")
        if self.hub is None:
            return fail("not_allowed_token_type")
        host = self.base_url().split("://", 1)[-1]
        return ok(url=f"ws://{host}/link?ticket={self.hub.ticket()}&app_id={ws.APP_ID}")

    def auth_test(self, params: Params) -> Reply:
        """Who the token belongs to."""
        return ok(
            url=f"https://{ws.TEAM_DOMAIN}.slack.com/",
            team=ws.TEAM_NAME,
            user=ws.BOT_NAME,
            team_id=ws.TEAM_ID,
            user_id=ws.BOT_USER_ID,
            bot_id=ws.BOT_ID,
            is_enterprise_install=False,
        )

    def _rate_limited(self, channel: str) -> Reply | None:
        """Emulate chat.postMessage's per-channel limit when switched on."""
        settings, now = self.store.settings, self.store.now()
        with self.store.lock:
            last = self.store.last_post.get(channel)
            if settings.rate_limit and last is not None and now - last < settings.rate_interval:
                retry_after = max(1, math.ceil(settings.rate_interval - (now - last)))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            self.store.last_post[channel] = now
        return None

    def _update_tier(self) -> Reply | None:
        """Emulate chat.update's Tier 3 when switched on: at most N calls in any 60 s for the whole workspace."""
        limit, now = self.store.settings.update_tier_per_minute, self.store.now()
        if limit <= 0:
            return None
        with self.store.lock:
            window = self.store.updates
            while window and now - window[0] >= 60.0:
                window.popleft()
            if len(window) >= limit:
                retry_after = max(1, math.ceil(60.0 - (now - window[0])))
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
            window.append(now)
        return None

    def post_message(self, params: Params) -> Reply:
        """chat.postMessage: a root message or a thread reply, where the bot may post."""
        channel = ws.bot_channel(str(params.get("channel", "")))
        refusal = post_refusal(channel, self.store.settings.scopes)
        if channel is None or refusal is not None:
            return fail(refusal or "channel_not_found")
        try:
            text, blocks = message_content(params, self.store.settings.blocks_char_limit)
            metadata = message_metadata(params)
        except BlockError as exc:
            return block_fail(exc)
        thread_ts = params.get("thread_ts") or None
        if thread_ts and self.store.find_message(channel.id, thread_ts) is None:
            thread_ts = None  # Slack posts to the channel when the parent does not exist
        limited = self._rate_limited(channel.id)
        if limited:
            return limited
        msg = bot_message(text, blocks, thread_ts)
        if metadata:
            msg["metadata"] = metadata  # returned by the read methods when include_all_metadata is set
        msg = self.store.add_message(channel.id, msg)
        return ok(channel=channel.id, ts=msg["ts"], message=_public(msg))

    def update(self, params: Params) -> Reply:
        """chat.update: text without blocks keeps the old blocks (python-slack-sdk#523), so send both."""
        limited = self._update_tier()
        if limited:
            return limited
        channel = ws.bot_channel(str(params.get("channel", "")))
        if channel is None:
            return fail("channel_not_found")
        if channel.is_archived:
            return fail("is_inactive")  # chat.update's word for a frozen, archived or deleted channel
        ts = str(params.get("ts", ""))
        settings = self.store.settings
        try:
            text, blocks = message_content({**params, "text": params.get("text") or ""}, settings.blocks_char_limit)
        except BlockError as exc:
            return block_fail(exc)
        if len(text) > settings.update_text_limit:
            return fail("msg_too_long")
        with self.store.lock:
            msg = self.store.find_message(channel.id, ts)
            if msg is None:
                return fail("message_not_found")
            if msg.get("user") != ws.BOT_USER_ID:
                return fail("cant_update_message")
            _apply_update(msg, params, text, blocks)
            self.store.touch()
            public = _public(msg)
        return ok(channel=channel.id, ts=ts, text=public["text"], message=public)

    def post_ephemeral(self, params: Params) -> Reply:
        """chat.postEphemeral: only in a channel the bot is in, only to a member of it."""
        channel = ws.bot_channel(str(params.get("channel", "")))
        refusal = "is_archived" if channel is not None and channel.is_archived else member_refusal(channel)
        if channel is None or refusal is not None:
            return fail(refusal or "channel_not_found")
        user = str(params.get("user", ""))
        if user not in channel.members or user == ws.BOT_USER_ID:
            return fail("user_not_in_channel")
        try:
            text, blocks = message_content(params, self.store.settings.blocks_char_limit)
        except BlockError as exc:
            return block_fail(exc)
        msg = self.store.add_ephemeral(user, channel.id, bot_message(text, blocks, params.get("thread_ts")))
        return ok(message_ts=msg["ts"])

    def permalink(self, params: Params) -> Reply:
        """chat.getPermalink: a link into the page, shaped like Slack's archive links."""
        channel = ws.bot_channel(str(params.get("channel", "")))
        if channel is None:
            return fail("channel_not_found")
        msg = self.store.find_message(channel.id, str(params.get("message_ts", "")))
        if msg is None:
            return fail("message_not_found")
        link = f"{self.base_url()}/archives/{channel.id}/p{msg['ts'].replace('.', '')}"
        if msg.get("thread_ts") and msg["thread_ts"] != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={channel.id}"
        return ok(channel=channel.id, permalink=link)

    def views_open(self, params: Params) -> Reply:
        """views.open: needs a fresh, unused trigger id."""
        try:
            view = check_view(params.get("view"), ("modal",))
        except BlockError as exc:
            return block_fail(exc)
        user, error = self.store.use_trigger(str(params.get("trigger_id", "")))
        if user is None:
            return fail(error or "invalid_trigger_id")
        stored = self.store_view(view, user)
        with self.store.lock:
            self.store.modals[user] = [stored["id"]]
            self.store.touch()
        return ok(view=stored)

    def views_publish(self, params: Params) -> Reply:
        """views.publish: the user's Home tab."""
        user = str(params.get("user_id", ""))
        if user not in ws.ALL_USERS or ws.ALL_USERS[user].is_bot:
            return fail("user_not_found")
        try:
            view = check_view(params.get("view"), ("home",))
        except BlockError as exc:
            return block_fail(exc)
        stored = self.store_view(view, user, self.store.home.get(user))
        with self.store.lock:
            self.store.home[user] = stored["id"]
            self.store.touch()
        return ok(view=stored)

    def views_update(self, params: Params) -> Reply:
        """views.update: by view_id or external_id, honouring `hash`."""
        with self.store.lock:
            view_id = self._resolve_view(params)
            if view_id is None:
                return fail("not_found")
            current = self.store.views[view_id]
            if params.get("hash") and params["hash"] != current["hash"]:
                return fail("hash_conflict")
            try:
                view = check_view(params.get("view"), (current["type"],))
            except BlockError as exc:
                return block_fail(exc)
            stored = self.store_view(view, self.store.view_owner[view_id], view_id)
            self.store.view_errors.pop(view_id, None)
            self.store.touch()
        return ok(view=stored)

    def _resolve_view(self, params: Params) -> str | None:
        """The stored view named by view_id or external_id."""
        if params.get("view_id"):
            return params["view_id"] if params["view_id"] in self.store.views else None
        ext = params.get("external_id")
        return next((v for v, view in self.store.views.items() if ext and view.get("external_id") == ext), None)

    def store_view(self, view: dict[str, Any], user: str, view_id: str | None = None) -> dict[str, Any]:
        """Store a view under a (new or kept) id, filled out the way Slack returns it."""
        view_id = view_id or "V0" + secrets.token_hex(5).upper()
        previous = self.store.views.get(view_id, {})
        stored = {
            "id": view_id,
            "team_id": ws.TEAM_ID,
            "type": view["type"],
            "blocks": view.get("blocks", []),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous.get("previous_view_id"),
            "root_view_id": previous.get("root_view_id", view_id),
            "app_id": ws.APP_ID,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ws.TEAM_ID,
            "bot_id": ws.BOT_ID,
        }
        with self.store.lock:
            self.store.views[view_id] = stored
            self.store.view_owner[view_id] = user
        return stored

    def users_info(self, params: Params) -> Reply:
        """users.info."""
        user = ws.ALL_USERS.get(str(params.get("user", "")))
        return ok(user=ws.user_json(user)) if user else fail("user_not_found")

    def usergroup_users(self, params: Params) -> Reply:
        """usergroups.users.list."""
        group = ws.GROUPS_BY_ID.get(str(params.get("usergroup", "")))
        return ok(users=list(group.users)) if group else fail("no_such_subteam")

    def conversations_info(self, params: Params) -> Reply:
        """conversations.info (by id only, as Slack; invisible conversations do not exist for the bot)."""
        found = ws.ALL_CHANNELS.get(str(params.get("channel", "")))
        channel = found if found is not None and found.visible_to_bot else None
        return ok(channel=ws.channel_json(channel)) if channel else fail("channel_not_found")


def _apply_update(msg: Message, params: Params, text: str, blocks: list[dict[str, Any]] | None) -> None:
    """Edit a stored message in place."""
    if "blocks" in params and params["blocks"] not in (None, ""):
        if blocks:
            msg["blocks"] = blocks
        else:
            msg.pop("blocks", None)
    elif text:
        msg.pop("blocks", None)  # Slack drops the blocks when only text is sent
    if text or "text" in params:
        msg["text"] = text
    msg["edited"] = {"user": ws.BOT_USER_ID, "ts": str(time.time())}


def _public(msg: Message) -> Message:
    """A message without the stand-in's own bookkeeping."""
    return {k: v for k, v in msg.items() if k not in ("channel", "is_ephemeral")}
