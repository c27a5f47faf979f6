"""Injection: mentions, broadcasts, links and SQL-ish text typed into service names, reasons and image tags come out
inert in every message the bot builds (thread, root, answers, status, history), and the database is unharmed."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import func, select

from models import Deployment
from tests.e2e_support import World, wait_for

NASTY = "<!channel> <!here> <@U0MALLORY> <!subteam^S0APPROVERS> <http://evil.example|click me>"
SQL = "'; DROP TABLE deployments; --"
TOKENS = ("<!channel>", "<!here>", "<@U0MALLORY>", "<http://evil.example", "<!subteam^S0APPROVERS> <http")


def _everything(world: World) -> list[str]:
    """Every message, ephemeral and view the stand-in holds, as JSON text (blocks and text alike)."""
    snapshot = world.snapshot()
    return [json.dumps(snapshot["channels"]), json.dumps(snapshot["ephemerals"]), json.dumps(snapshot["views"])]


def test_typed_text_is_inert_everywhere_it_is_shown(world: World) -> None:
    behind = time.time() - world.ecs.now().timestamp()
    if behind > 0:
        world.ecs.advance(behind)
    commands = [
        f'catalog canary 10% reason="{NASTY} {SQL}"',
        f"{NASTY}",  # as a service name
        f"catalog image=:{NASTY}",  # as an image tag
        f'lock orders reason="{NASTY} {SQL}"',
        "status",
        "status orders",
        "history catalog",
        f"rollback {SQL}",
    ]
    acks = [world.command("U0ALICE", text) for text in commands]
    later = sum(1 for ack in acks if not ack.get("shown"))  # the rest were answered in the ack itself
    dep = world.started()
    world.control("app_home_opened", {"user": "U0ALICE"})
    wait_for(lambda: len(world.ephemerals("U0ALICE")) >= later, what="every command answered", timeout=20)
    world.drain()
    shown = [*_everything(world), json.dumps([ack.get("shown") for ack in acks])]
    leaks: list[tuple[str, Any]] = [
        (t, s[max(0, s.find(t) - 80) : s.find(t) + 80]) for s in shown for t in TOKENS if t in s
    ]
    assert leaks == [], "\n".join(f"{t}: …{c}…" for t, c in leaks)
    assert "&lt;!channel&gt;" in "".join(shown)  # the text was shown, escaped, not dropped
    with world.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 1
        assert session.get_one(Deployment, dep).reason == f"{NASTY} {SQL}"  # stored as typed, bound not spliced
