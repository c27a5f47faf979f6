"""History reads each page of deployments with one query per table, and says what view_of says one by one."""

from __future__ import annotations

from sqlalchemy import select

from bot.db.store import view_of
from bot.domain.enums import DeploymentStatus
from bot.domain.grammar import parser as grammar
from models import Deployment
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()


def test_history_pages_agree_with_each_deployment_read_alone(harness: Harness) -> None:
    ids = []
    for text in ("catalog canary 10%", "catalog canary 10% image=:1.3.0"):
        answer = harness.usecases.handle(actor("U0ALICE"), grammar.parse(text, CATALOG))
        assert answer.ok and answer.deployment_id is not None, answer.text
        dep = answer.deployment_id
        ids.append(dep)
        harness.run_until(dep, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
        assert harness.usecases.decisions.rollback(actor("U0BOB", source="button"), dep, reason="bench").ok
        harness.run_until(dep, lambda v: not v.is_active)
    page = harness.usecases.deployments.history("catalog", 10)
    mine = harness.usecases.deployments.history_for_user("U0ALICE", 10)
    with harness.sessions() as session:
        alone = {d.id: view_of(session, d, with_events=True) for d in session.scalars(select(Deployment))}
        summary = {d.id: view_of(session, d) for d in session.scalars(select(Deployment))}
    assert [v.id for v in page] == ids[::-1]
    assert page == [alone[i] for i in ids[::-1]]
    assert all(v.events and v.decisions for v in page)  # the page did carry events and decisions
    assert mine == [summary[i] for i in ids[::-1]]
