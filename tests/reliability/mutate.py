"""Seeded mutations of Slack payloads: what a broken proxy, a replay tool or an attacker with the secret could send.

No hypothesis (not a dependency): a `random.Random(seed)` per run, so a failure names the seed that reproduces it.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any
from urllib.parse import urlencode

from bot.slack.blocks import APPROVE_ACTION, FORM_CALLBACK, ROLLBACK_ACTION

TEAM = {"id": "T0UNICORN", "domain": "unicorn"}
RESPONSE_URL = "https://evil.example/hook"  # never trusted: the bot answers through the Web API, never POSTs there
NASTY: list[Any] = [
    None,
    0,
    -1,
    10**30,
    1.5,
    True,
    "",
    " ",
    "x" * 5000,
    "<!channel> <@U0BOB> *bold* `code` ~s~ <http://evil|click>",
    "'; DROP TABLE deployments; --",
    "\u0000\u202e\ud7ff",
    "dep-1-v1",
    "1|ecs-pause-x",
    [],
    [None],
    {},
    {"id": 7},
    {"type": "view"},
]


def command(text: str = "status", user: str = "U0DAVE", channel: str = "C0DEPLOYS") -> dict[str, Any]:
    """A `/deploy` slash command's form fields."""
    return {
        "token": "x",
        "team_id": "T0UNICORN",
        "team_domain": "unicorn",
        "channel_id": channel,
        "channel_name": "deploys",
        "user_id": user,
        "user_name": "dave",
        "command": "/deploy",
        "text": text,
        "api_app_id": "A0DEPLOYBOT",
        "response_url": RESPONSE_URL,
        "trigger_id": "1.2.3",
    }


def click(action_id: str = APPROVE_ACTION, dep: int = 999_999, user: str = "U0DAVE") -> dict[str, Any]:
    """A `block_actions` click on a decision button of a deployment that does not exist."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "dave", "team_id": "T0UNICORN"},
        "api_app_id": "A0DEPLOYBOT",
        "token": "x",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": "C0DEPLOYS", "is_ephemeral": False},
        "trigger_id": "1.2.3",
        "team": dict(TEAM),
        "channel": {"id": "C0DEPLOYS", "name": "deploys"},
        "response_url": RESPONSE_URL,
        "state": {"values": {}},
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": f"dep-{dep}-v1",
                "value": f"{dep}|ecs-pause-x",
                "action_ts": "1.5",
            }
        ],
    }


def submission(user: str = "U0DAVE") -> dict[str, Any]:
    """The deploy form submitted with no service picked (the bot answers errors; nothing starts)."""
    return {
        "type": "view_submission",
        "user": {"id": user, "team_id": "T0UNICORN"},
        "team": dict(TEAM),
        "api_app_id": "A0DEPLOYBOT",
        "trigger_id": "1.2.3",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": FORM_CALLBACK,
            "private_metadata": json.dumps({"channel": "C0DEPLOYS"}),
            "state": {
                "values": {
                    "service": {"service": {"type": "static_select", "selected_option": None}},
                    "strategy": {"strategy": {"type": "static_select", "selected_option": {"value": "canary"}}},
                    "percent": {"percent": {"type": "plain_text_input", "value": "10"}},
                }
            },
        },
    }


def event(kind: str = "app_home_opened", user: str = "U0DAVE") -> dict[str, Any]:
    """An Events API envelope."""
    inner: dict[str, Any] = {"type": kind, "user": user, "tab": "home", "event_ts": "1.1"}
    if kind == "subteam_members_changed":
        inner = {"type": kind, "subteam_id": "S0APPROVERS", "event_ts": "1.1"}
    return {
        "type": "event_callback",
        "token": "x",
        "team_id": "T0UNICORN",
        "api_app_id": "A0DEPLOYBOT",
        "event": inner,
        "event_id": "Ev1",
        "event_time": 1,
        "authorizations": [{"team_id": "T0UNICORN", "user_id": "U0DEPLOYBOT", "is_bot": True}],
    }


def bases() -> list[tuple[str, dict[str, Any]]]:
    """Every kind of request the bot serves, each harmless as it stands (no side effect is legitimate)."""
    return [
        ("command", command()),
        ("command", command("rollback nosuchservice")),
        ("block_actions", click()),
        ("block_actions", click(ROLLBACK_ACTION)),
        ("view_submission", submission()),
        ("event_callback", event()),
        ("event_callback", event("subteam_members_changed")),
        ("url_verification", {"type": "url_verification", "token": "x", "challenge": "c"}),
    ]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += _paths(inner, (*prefix, index))
    return found


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        root = root[step]
    return root


def mutate(base: dict[str, Any], rng: random.Random, rounds: int = 3) -> dict[str, Any]:
    """A copy of `base` with 1..rounds structural mutations: keys dropped, values swapped for nasty ones."""
    body = copy.deepcopy(base)
    for _ in range(rng.randint(1, rounds)):
        paths = _paths(body)
        if not paths:
            break
        path = rng.choice(paths)
        parent = _parent(body, path)
        roll = rng.random()
        if roll < 0.3 and isinstance(parent, dict):
            del parent[path[-1]]
        elif roll < 0.4 and isinstance(parent, dict):
            parent[rng.choice(["extra", "type", "user", "view", "actions", "event"])] = rng.choice(NASTY)
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(NASTY))
    return body


def encode(kind: str, body: dict[str, Any], rng: random.Random) -> tuple[bytes, str]:
    """The raw body and content type Slack would use for this kind, sometimes deliberately wrong."""
    roll = rng.random()
    if roll < 0.05:
        return rng.choice([b"", b"\xff\xfe", b"payload=%E0%A4%A", b"{", b"[]", b"null"]), rng.choice(
            ["application/json", "application/x-www-form-urlencoded", "text/plain"]
        )
    if kind == "command":
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
        return urlencode(fields).encode(), "application/x-www-form-urlencoded"
    if kind in ("event_callback", "url_verification"):
        return json.dumps(body).encode(), "application/json"
    return urlencode({"payload": json.dumps(body)}).encode(), "application/x-www-form-urlencoded"


def command_text(rng: random.Random) -> str:
    """A random `/deploy` text: grammar words, numbers, quotes, options and junk."""
    words = [
        "catalog", "orders", "ui", "status", "history", "rollback", "approve", "lock", "unlock", "help",
        "canary", "linear", "bluegreen", "rolling", "10%", "100%", "0.1%", "-5%", "1e9%", "image=:1.3.0",
        "image=", "taskdef=x:1", "reason=", 'reason="a b', 'reason="<!channel>"', "bake=5m", "bake=-1m",
        "approve=none", "approve=POST_SCALE_UP", "for=1h", "for=99999999d", "=", '"', "'", "\\", "<@U0BOB>",
        "<!here>", "*x*", "`x`", "'; DROP TABLE x; --", "\u202e", "🚀", "\t", "%", "x" * 300,
    ]  # fmt: skip
    return " ".join(rng.choice(words) for _ in range(rng.randint(0, 8)))
