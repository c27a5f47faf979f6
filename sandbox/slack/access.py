"""Who may call what: scopes per token and method, and where the bot may post (Slack's rules, strictly)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sandbox.slack import workspace as ws

# What a typical install of DeployBot grants (its manifest's bot scopes); tests take scopes away to see the
# bot cope with `missing_scope`.
DEFAULT_BOT_SCOPES = frozenset(
    {
        "channels:history",
        "channels:read",
        "chat:write",
        "chat:write.public",
        "commands",
        "groups:history",
        "groups:read",
        "usergroups:read",
    }
)
APP_TOKEN_SCOPES = frozenset({"connections:write"})


def by_type(public: str, private: str, im: str, mpim: str) -> Callable[[ws.Channel | None], str | None]:
    """A conversations.* scope that depends on the conversation's type (Slack: "depend on the type")."""

    def needed(channel: ws.Channel | None) -> str | None:
        if channel is None:
            return None
        if channel.is_im:
            return im
        if channel.is_mpim:
            return mpim
        return private if channel.is_private else public

    return needed


def fixed(scope: str | None) -> Callable[[ws.Channel | None], str | None]:
    """A method that needs one scope whatever it is called on."""
    return lambda _channel: scope


METHOD_SCOPES: Mapping[str, Callable[[ws.Channel | None], str | None]] = {
    "auth.test": fixed(None),
    "chat.postMessage": fixed("chat:write"),
    "chat.update": fixed("chat:write"),
    "chat.postEphemeral": fixed("chat:write"),
    "chat.getPermalink": fixed(None),
    "views.open": fixed(None),
    "views.publish": fixed(None),
    "views.update": fixed(None),
    "users.info": fixed("users:read"),
    "usergroups.users.list": fixed("usergroups:read"),
    "conversations.info": by_type("channels:read", "groups:read", "im:read", "mpim:read"),
    "conversations.history": by_type("channels:history", "groups:history", "im:history", "mpim:history"),
    "conversations.replies": by_type("channels:history", "groups:history", "im:history", "mpim:history"),
}


def missing_scope(method: str, channel: ws.Channel | None, granted: frozenset[str]) -> str | None:
    """The scope this call lacks, or None."""
    rule = METHOD_SCOPES.get(method)
    needed = rule(channel) if rule is not None else None
    return needed if needed is not None and needed not in granted else None


def post_refusal(channel: ws.Channel | None, granted: frozenset[str]) -> str | None:
    """Why chat.postMessage may not post here (None: it may)."""
    if channel is None:
        return "channel_not_found"  # private, DM or group DM the bot is not in: it cannot even see it
    if channel.is_archived:
        return "is_archived"
    if not channel.bot_is_member and "chat:write.public" not in granted:
        return "not_in_channel"
    return None


def member_refusal(channel: ws.Channel | None) -> str | None:
    """Why a call that needs the bot in the conversation (history, ephemerals) fails here."""
    if channel is None:
        return "channel_not_found"
    return None if channel.bot_is_member else "not_in_channel"
