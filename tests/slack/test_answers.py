"""A command's answer is the first thing the person sees: "Working on it…" only when the answer is late.

Slack cannot replace the ephemeral a command's ack shows (a command's response_url `replace_original` posts a new
message: docs/SLACK_BEHAVIOUR.md), so the ack is empty and the answer comes by itself.
"""

from __future__ import annotations

import time

import pytest

from bot.domain.grammar import parser as grammar
from bot.engine.answers import Actor, Answer
from handlers import commands
from tests.e2e_support import World, wait_for


def _texts(w: World, user: str) -> list[str]:
    return [m["text"] for m in w.ephemerals(user)]


def test_a_quick_answer_is_all_the_person_sees(world: World) -> None:
    w = world
    shown = w.command("U0ALICE", "status")
    assert shown["shown"] is None
    wait_for(lambda: _texts(w, "U0ALICE"), what="the status answer")
    time.sleep(commands.LATE_AFTER + 0.5)  # past the deadline: no "Working on it…" comes after all
    assert _texts(w, "U0ALICE") == ["No deployment is in progress"]


def test_a_late_answer_is_announced_once_before_it_comes(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    w = world
    monkeypatch.setattr(commands, "LATE_AFTER", 0.2)
    usecases = w.ctx.usecases
    handle = usecases.handle

    def slow(actor: Actor, command: grammar.Command) -> Answer:
        time.sleep(1.0)
        return handle(actor, command)

    monkeypatch.setattr(usecases, "handle", slow)
    assert w.command("U0ALICE", "status")["shown"] is None
    wait_for(lambda: len(_texts(w, "U0ALICE")) == 2, what="the note and the answer")
    assert _texts(w, "U0ALICE") == [commands.WORKING, "No deployment is in progress"]
