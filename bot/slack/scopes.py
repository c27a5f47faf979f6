"""The bot scopes the code needs, by Web API method (tests/slack/test_manifest.py keeps this and the manifest true)."""

from __future__ import annotations

from collections.abc import Mapping

# Web API method → the bot scopes it needs (Slack's method docs). A method the code calls that is missing here
# fails tests/slack/test_manifest.py: add it with its scopes, and the manifest with them.
METHOD_SCOPES: Mapping[str, frozenset[str]] = {
    "auth.test": frozenset(),
    # chat:write.public: the bot posts in public channels it was never invited to (incident channels).
    "chat.postMessage": frozenset({"chat:write", "chat:write.public"}),
    "chat.update": frozenset({"chat:write"}),
    "chat.postEphemeral": frozenset({"chat:write"}),
    "chat.getPermalink": frozenset(),
    "views.open": frozenset(),
    "views.publish": frozenset(),
    "views.update": frozenset(),
    "usergroups.users.list": frozenset({"usergroups:read"}),
    "users.info": frozenset({"users:read"}),
    # Pre-flight (can the bot post where a deployment is narrated?) and the sender's "may I read its history?".
    "conversations.info": frozenset({"channels:read", "groups:read"}),
    # The sender's recovery reads public and private channels' history to find a message it may have posted.
    "conversations.history": frozenset({"channels:history", "groups:history"}),
    "conversations.replies": frozenset({"channels:history", "groups:history"}),
    # Socket Mode's websocket URL, with the app-level token (its scope is not a bot scope).
    "apps.connections.open": frozenset(),
}
# What the code as a whole needs (`commands` for /deploy): `deploybot check` compares it with x-oauth-scopes.
REQUIRED_BOT_SCOPES = frozenset(
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
APP_TOKEN_SCOPE = "connections:write"  # noqa: S105 - a scope name, not a secret
