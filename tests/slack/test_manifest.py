"""app_manifest.yml: valid against Slack's manifest schema, and asking for exactly the bot scopes the code uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from slack_sdk import WebClient

from bot.slack.scopes import METHOD_SCOPES, REQUIRED_BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]
# A copy of Slack's manifest schema from the shared folder, kept in the repository so any clone can validate.
SCHEMA = ROOT / "tests" / "data" / "slack-app-manifest.schema.1.0.0.json"
SOURCES = [p for d in ("bot", "handlers") for p in sorted((ROOT / d).rglob("*.py")) if "sandbox" not in p.parts]
EVENTS_URL = "https://deploybot.example.com/slack/events"

CLIENT_METHODS = {name for name in dir(WebClient) if not name.startswith("_") and callable(getattr(WebClient, name))}
GENERIC = {"api_call"}


def manifest() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "app_manifest.yml").read_text())
    assert isinstance(data, dict)
    return data


def schema() -> dict[str, Any]:
    if not SCHEMA.is_file():
        pytest.fail(f"Slack's manifest schema is missing: expected {SCHEMA} (copy it from shared/schemas/)")
    data = json.loads(SCHEMA.read_text())
    assert isinstance(data, dict)
    return data


def web_api_methods() -> dict[str, set[str]]:
    """Web API methods called anywhere in bot/ and handlers/ (`client.chat_postMessage(` …), with where."""
    found: dict[str, set[str]] = {}
    for path in SOURCES:
        text = path.read_text()
        names = {m for m in re.findall(r"\.([a-z]+_[A-Za-z_]+)\(", text) if m in CLIENT_METHODS - GENERIC}
        methods = {n.replace("_", ".") for n in names}
        methods |= set(re.findall(r"api_call\(\s*[\"']([a-zA-Z.]+)[\"']", text))
        for method in methods:
            found.setdefault(method, set()).add(str(path.relative_to(ROOT)))
    return found


def registered(kind: str) -> set[str]:
    """What the listeners register: `app.command("/deploy")`, `app.event("app_home_opened")`."""
    pattern = rf"app\.{kind}\(\s*([A-Z_]+|\"[^\"]+\")"
    names: set[str] = set()
    for path in (ROOT / "handlers").glob("*.py"):
        text = path.read_text()
        for raw in re.findall(pattern, text):
            if raw.startswith('"'):
                names.add(raw.strip('"'))
            else:  # a module constant, e.g. COMMAND = "/deploy"
                names.update(re.findall(rf"^{raw}\s*=\s*\"([^\"]+)\"", text, re.MULTILINE))
    return names


def test_manifest_is_valid_against_slacks_schema() -> None:
    jsonschema.validate(manifest(), schema())


def test_manifest_declares_command_interactivity_events_and_home() -> None:
    data = manifest()
    commands = {c["command"]: c for c in data["features"]["slash_commands"]}
    assert set(commands) == registered("command") == {"/deploy"}
    assert commands["/deploy"]["url"] == EVENTS_URL and commands["/deploy"]["usage_hint"]
    settings = data["settings"]
    assert settings["interactivity"] == {"is_enabled": True, "request_url": EVENTS_URL}
    assert settings["event_subscriptions"]["request_url"] == EVENTS_URL
    assert (
        set(settings["event_subscriptions"]["bot_events"])
        == registered("event")
        == {
            "app_home_opened",
            "subteam_members_changed",
            "subteam_updated",
        }
    )
    assert data["features"]["app_home"]["home_tab_enabled"] is True
    assert settings["socket_mode_enabled"] is False
    assert data["features"]["bot_user"]["display_name"]


def test_bot_scopes_are_exactly_what_the_code_uses() -> None:
    used = web_api_methods()
    unknown = sorted(m for m in used if m not in METHOD_SCOPES)
    assert not unknown, f"add these Web API methods to METHOD_SCOPES (and their scopes to the manifest): {unknown}"
    needed = set().union(*(METHOD_SCOPES[m] for m in used))
    if registered("command"):
        needed.add("commands")
    declared = manifest()["oauth_config"]["scopes"]["bot"]
    assert needed == REQUIRED_BOT_SCOPES, "bot/slack/scopes.REQUIRED_BOT_SCOPES is what `deploybot check` asks for"
    assert len(declared) == len(set(declared))
    assert set(declared) == needed, (
        f"missing from the manifest: {sorted(needed - set(declared))}; "
        f"not used by the code: {sorted(set(declared) - needed)}"
    )


def test_the_scan_sees_the_calls_it_must() -> None:
    used = web_api_methods()
    for method in (
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "views.open",
        "views.publish",
        "usergroups.users.list",
        "conversations.history",
        "conversations.replies",
    ):
        assert method in used, method
