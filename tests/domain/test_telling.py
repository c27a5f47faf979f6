"""Where each timeline event is told: a thread reply, only the root message, or only the history (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.enums import EventKind, Telling
from bot.domain.telling import closing_channels, telling

K, R, ROOT, AUDIT = EventKind, Telling.REPLY, Telling.ROOT, Telling.AUDIT


@pytest.mark.parametrize(
    ("kind", "detail", "told"),
    [
        (K.ACCEPTED, {}, ROOT),
        (K.STARTED, {}, R),
        (K.START_FAILED, {}, R),
        (K.STAGE_ENTERED, {"stage": "SCALE_UP"}, ROOT),
        (K.STAGE_PASSED, {"stage": "POST_SCALE_UP"}, ROOT),
        (K.TRAFFIC_MOVED, {"direction": "fwd", "test_weight": 100.0}, ROOT),  # test traffic: the bar
        (K.TRAFFIC_MOVED, {"direction": "rb"}, ROOT),  # going back: the rollback line said it
        (K.TRAFFIC_MOVED, {"direction": "fwd", "step": 1, "steps": 2, "approved_by": None}, R),
        (K.TRAFFIC_MOVED, {"direction": "fwd", "step": 1, "steps": 2, "approved_by": "U0BOB"}, ROOT),
        (K.HOOK_AWAITING, {"hook_id": "p1"}, R),
        (K.HOOK_RESOLVED, {"target_type": "PAUSE", "outcome": "succeeded", "decision": "APPROVE"}, ROOT),
        (K.HOOK_RESOLVED, {"target_type": "PAUSE", "outcome": "failed", "resolved_by": "U0BOB"}, ROOT),
        (K.HOOK_RESOLVED, {"target_type": "PAUSE", "outcome": "succeeded"}, R),  # released outside DeployBot
        (K.HOOK_RESOLVED, {"target_type": "PAUSE", "outcome": "timed_out"}, R),
        (K.HOOK_RESOLVED, {"target_type": "PAUSE", "outcome": "failed"}, ROOT),  # its rollback tells it
        (K.HOOK_RESOLVED, {"target_type": "AWS_LAMBDA", "outcome": "failed"}, ROOT),
        (K.HOOK_RESOLVED, {"target_type": "AWS_LAMBDA", "outcome": "succeeded"}, ROOT),
        (K.BAKE_STARTED, {"kind": "final"}, R),
        (K.BAKE_STARTED, {"kind": "step"}, ROOT),  # folded into its traffic line
        (K.ROLLBACK_STARTED, {"cause": "user", "by": "U0BOB"}, ROOT),  # the DECISION line said who, where, why
        (K.ROLLBACK_STARTED, {"cause": "timeout", "hook_id": "p1"}, ROOT),  # the timed-out pause said it
        (K.ROLLBACK_STARTED, {"cause": "timeout"}, R),
        (K.ROLLBACK_STARTED, {"cause": "alarm"}, R),
        (K.ROLLBACK_STARTED, {"cause": "circuit_breaker"}, R),
        (K.ROLLBACK_STARTED, {"cause": "hook_failure"}, R),
        (K.ROLLBACK_STARTED, {"cause": "ecs"}, R),
        (K.FINISHED, {"outcome": "SUCCEEDED"}, R),
        (K.DECISION, {"decision": "APPROVE"}, R),
        (K.DECISION, {"decision": "ROLLBACK"}, R),
        (K.REMINDER, {}, R),
        (K.REFUSED, {}, AUDIT),
        (K.LOCKED, {}, AUDIT),
        (K.UNLOCKED, {}, AUDIT),
    ],
)
def test_telling(kind: EventKind, detail: dict[str, Any], told: Telling) -> None:
    assert telling(kind, detail) is told


def test_every_kind_has_a_telling() -> None:
    assert {telling(kind, {}) for kind in EventKind} <= set(Telling)


@pytest.mark.parametrize(
    ("asked", "causes", "incident", "closed"),
    [
        ((), (), "C0INC42", ()),  # nobody asked elsewhere, nothing announced
        (("C0DEPLOY",), ("user",), "C0INC42", ()),  # a button on the root message: the thread is the place
        (("C0INC42",), ("user",), "C0INC42", ("C0INC42",)),  # `/deploy rollback` from the incident channel
        ((), ("alarm",), "C0INC42", ("C0INC42",)),  # announced there automatically
        ((), ("timeout",), None, ()),  # announced nowhere: no incident channel
        (("C0INC42",), ("alarm", "user"), "C0INC42", ("C0INC42",)),  # both: one closing line
        (("G0WAR", "C0INC42", "G0WAR"), (), None, ("G0WAR", "C0INC42")),  # in order, each once
        (("D0BOB", None), ("user",), "C0INC42", ()),  # a DM or App Home: no channel to close
        ((), ("superseded",), "C0INC42", ()),  # a newer deployment is no incident
    ],
)
def test_closing_channels(
    asked: tuple[str | None, ...], causes: tuple[str, ...], incident: str | None, closed: tuple[str, ...]
) -> None:
    assert closing_channels("C0DEPLOY", asked, causes, incident) == closed
