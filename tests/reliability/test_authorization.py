"""The authorization matrix — roles × actions × four-eyes — as one table, through the use cases against ECS.

Roles in the example catalog: Alice is a deployer by name; Bob and Carol are approvers (S0APPROVERS, also deployers
through it), Carol is on call (S0ONCALL); Dave is nobody. A refusal names its rule, changes nothing on ECS and is
on record; an allowed action does what it says.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.domain.catalog.loader import Catalog
from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from models import DeploymentEvent
from tests.support import Control, Harness, actor, example_catalog, make_usecases

ALICE, BOB, CAROL, DAVE = "U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"
CHANGES = ("UpdateService", "ContinueServiceDeployment", "StopServiceDeployment")

# (who, action, requested by, four-eyes on ui, expected rule: "ok" or the refusal's rule)
MATRIX = [
    (ALICE, "deploy", None, True, "ok"),
    (BOB, "deploy", None, True, "ok"),
    (CAROL, "deploy", None, True, "ok"),
    (DAVE, "deploy", None, True, "not_deployer"),
    (ALICE, "approve", ALICE, True, "not_approver"),
    (BOB, "approve", ALICE, True, "ok"),
    (CAROL, "approve", ALICE, True, "ok"),
    (DAVE, "approve", ALICE, True, "not_approver"),
    (BOB, "approve", BOB, True, "four_eyes"),
    (CAROL, "approve", BOB, True, "ok"),
    (BOB, "approve", BOB, False, "ok"),
    (ALICE, "approve", ALICE, False, "not_approver"),
    (ALICE, "rollback", ALICE, True, "ok"),
    (BOB, "rollback", ALICE, True, "ok"),
    (CAROL, "rollback", ALICE, True, "ok"),
    (DAVE, "rollback", ALICE, True, "not_responder"),
    (ALICE, "lock", None, True, "ok"),
    (CAROL, "lock", None, True, "ok"),
    (DAVE, "lock", None, True, "not_responder"),
    (ALICE, "unlock", None, True, "ok"),
    (DAVE, "unlock", None, True, "not_responder"),
]


def _catalog(four_eyes: bool) -> Catalog:
    catalog = example_catalog()
    services = dict(catalog.services)
    services["ui"] = replace(services["ui"], four_eyes=four_eyes)
    return replace(catalog, services=services)


def _refusals(h: Harness, who: str) -> int:
    with h.sessions() as session:
        rows = session.scalars(
            select(DeploymentEvent).where(DeploymentEvent.kind == EventKind.REFUSED, DeploymentEvent.actor == who)
        )
        return len(list(rows))


def _changes(h: Harness) -> int:
    return sum(len(h.control.calls(op)) for op in CHANGES)


@pytest.mark.parametrize(("who", "action", "requester", "four_eyes", "rule"), MATRIX)
def test_authorization_matrix(
    ecs_url: str,
    sessions: sessionmaker[Session],
    who: str,
    action: str,
    requester: str | None,
    four_eyes: bool,
    rule: str,
) -> None:
    control = Control(ecs_url)
    control.post("reset")
    control.post("speed", {"speed": 0})
    catalog = _catalog(four_eyes)
    h = Harness(make_usecases(sessions, ecs_url, catalog), control, sessions)
    dep = None
    if requester is not None:  # a ui deployment by `requester`, paused for approval
        started = h.usecases.handle(actor(requester), grammar.parse("ui", catalog))
        assert started.ok and started.deployment_id, started.text
        dep = started.deployment_id
        h.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    if action == "unlock":
        assert h.usecases.handle(actor(CAROL), grammar.parse("lock ui", catalog)).ok
    before, refusals = _changes(h), _refusals(h, who)
    text = {"deploy": "ui", "approve": "approve ui", "rollback": "rollback ui", "lock": "lock ui"}.get(action, action)
    text = "unlock ui" if action == "unlock" else text
    answer = h.usecases.handle(actor(who), grammar.parse(text, catalog))
    assert (answer.rule or "ok") == rule and answer.ok is (rule == "ok"), answer.text
    if rule != "ok":
        assert _changes(h) == before  # a refusal reaches ECS with nothing
        assert _refusals(h, who) == refusals + 1  # and is on record, with its rule
    elif action in ("approve", "rollback", "deploy"):
        assert _changes(h) == before + 1  # exactly one change: one UpdateService, Continue or Stop
