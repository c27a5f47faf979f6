"""ECS faults over whole deployments: 30 % of calls throttled or failed (some 5xx after the call was done),
100–500 ms of latency on every call. Nothing lost, nothing started twice, no decision applied twice."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.grammar import parser as grammar
from bot.engine import reconciler as reconciler_module
from models import Deployment
from tests.reliability.conftest import SOAK, backend, scale
from tests.reliability.figures import record
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()
# The soak's latency is ECS's worst plausible; `make test` keeps the faults but not the wait.
LATENCY = (0.1, 0.5) if SOAK else (0.0, 0.02)
COMMANDS = ["catalog canary 10% image=:{n}.0.1", "ui image=:{n}.0.2", "orders image=:{n}.0.3", "notifications"]


def _faults(h: Harness, code: str) -> None:
    h.control.post("fault", {"operation": "*", "code": code, "rate": 0.3})
    # A change that landed but was answered 500: the caller must ask ECS, not send it again.
    for op in ("UpdateService", "ContinueServiceDeployment"):
        h.control.post("fault", {"operation": op, "code": "ServerException", "rate": 0.15, "after": True})
    low, high = LATENCY
    h.control.post("latency", {"min": low, "max": high})


def _clear(h: Harness) -> None:
    h.control.post("reset")
    h.control.post("speed", {"speed": 0})


def _drive(h: Harness, dep: int) -> DeploymentStatus:
    """Reconcile, approve each pause as it comes (as Bob), until the deployment ends."""
    for _ in range(400):
        with h.sessions.begin() as session:
            session.get_one(Deployment, dep).lease_until = None  # back-offs pass at once: time is the sandbox's
        report = h.usecases.reconciler.reconcile_once()
        view = h.view(dep)
        if not view.is_active:
            return view.status
        if view.status is DeploymentStatus.AWAITING_APPROVAL:
            if not view.decision_for(view.awaiting[0].hook_id):
                h.usecases.decisions.approve(actor("U0BOB", source="button"), dep)
            else:  # recorded, on its way to ECS: a second passes, never a jump to the pause's timeout
                h.control.advance(1)
        elif report.delayed or report.errors:
            # The bot has not seen ECS's latest state: jumping to ECS's next wake-up now could be a pause's
            # timeout the bot never saw begin (in real time it sees a pause within seconds of an hour).
            h.control.advance(1)
        elif not (view.ecs_deployment_arn and h.control.wake(view.ecs_deployment_arn)):
            h.control.advance(5)
    raise AssertionError(f"#{dep} never ended: {h.view(dep).status}")


# The soak's rounds drive one deployment at a time, so each is a test of its own: on many workers they run side by
# side instead of one worker taking all four in a row (the soak's longest test, ~4-5 min, before).
ROUNDS = scale(1, 4)


@pytest.mark.parametrize("n", range(1, ROUNDS + 1), ids=lambda n: f"round{n}")
@pytest.mark.parametrize("code", ["ThrottlingException", "ServerException"])
def test_ecs_faults_lose_and_duplicate_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, database_url: str, code: str, n: int
) -> None:
    monkeypatch.setattr(reconciler_module, "DECISION_RETRY_AFTER", timedelta(0))  # no concurrent click path here
    _faults(harness, code)
    outcomes: Counter[str] = Counter()
    started: list[int] = []
    for text in COMMANDS:
        answer = harness.usecases.handle(actor(), grammar.parse(text.format(n=n + 1), CATALOG))
        assert answer.ok and answer.deployment_id, answer.text  # a delay at worst, never a refusal
        started.append(answer.deployment_id)
        outcomes[_drive(harness, answer.deployment_id).value] += 1
    calls: list[dict[str, Any]] = harness.control.get("calls")["calls"]
    faults = sum(1 for c in calls if c["error"])
    _clear(harness)
    views = [harness.view(d) for d in started]
    lost = sum(1 for v in views if v.status is not DeploymentStatus.SUCCEEDED)
    arns = Counter(v.ecs_deployment_arn for v in views)
    per_service = Counter(
        c["parameters"].get("service") for c in calls if c["operation"] == "UpdateService" and c["done"]
    )
    applied = Counter(
        c["parameters"].get("hookId") for c in calls if c["operation"] == "ContinueServiceDeployment" and c["done"]
    )
    duplicated = sum(count - 1 for count in per_service.values() if count > 1)  # one round: one each
    twice = sum(count - 1 for count in applied.values() if count > 1)
    decisions = [(v.id, e.key) for v in views for e in v.events if e.kind is EventKind.DECISION]
    record(
        f"ECS {code} 30 % + 5xx-after 15 % + {LATENCY[0] * 1000:.0f}–{LATENCY[1] * 1000:.0f} ms"
        + (f", round {n} of {ROUNDS}" if ROUNDS > 1 else ""),
        backend=backend(database_url),
        deployments=len(views),
        faults=faults,
        lost=lost,
        duplicated=duplicated,
        applied_twice=twice,
        command=f"make soak (test_ecs_faults.py[{code}-round{n}])",
    )
    assert lost == 0, outcomes
    assert len(arns) == len(views)  # each deployment its own ECS deployment
    assert duplicated == 0, per_service
    assert twice == 0, applied
    assert len(set(decisions)) == len(decisions)
