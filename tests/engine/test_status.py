"""`/deploy status` and `/deploy status <service>` come from one read and never contradict each other."""

from __future__ import annotations

from bot.domain.enums import DeploymentStatus, LifecycleStage
from bot.domain.grammar import parser as grammar
from bot.domain.readmodels import StatusReport
from bot.slack.blocks import Message, status_message
from bot.slack.blocks.answers import active_line
from models import utcnow
from tests.support import Harness, actor, example_catalog

CATALOG = example_catalog()


def _run(h: Harness, text: str, user: str = "U0ALICE") -> None:
    answer = h.usecases.handle(actor(user), grammar.parse(text, CATALOG))
    assert answer.ok, answer.text


def _report(h: Harness, service: str | None) -> StatusReport:
    answer = h.usecases.handle(actor("U0BOB"), grammar.Status(service))
    assert answer.report is not None
    return answer.report


def test_all_and_per_service_status_agree_on_deployments_approvals_and_locks(harness: Harness) -> None:
    h = harness
    _run(h, "orders")
    orders = h.usecases.deployments.history("orders", 1)[0].id
    assert h.run_until(orders, lambda v: not v.is_active).status is DeploymentStatus.SUCCEEDED
    _run(h, "catalog canary 10%")
    _run(h, "notifications bluegreen bake=1h")
    catalog, notifications = (h.usecases.deployments.history(key, 1)[0].id for key in ("catalog", "notifications"))
    h.run_until(catalog, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    h.run_until(notifications, lambda v: v.lifecycle_stage is LifecycleStage.BAKE_TIME)
    _run(h, 'lock ui "load test"', user="U0CAROL")

    everything = _report(h, None)
    assert [v.service_key for v in everything.active] == ["catalog", "notifications"]
    assert [v.service_key for v in everything.waiting] == ["catalog"]
    assert [lock.service_key for lock in everything.locks] == ["ui"]
    now = utcnow()
    whole = status_message(everything, now)
    assert whole.text == "2 deployments in progress · 1 waiting for approval · 1 service locked"
    for key in CATALOG.names():
        one = _report(h, key)
        assert one.active == tuple(v for v in everything.active if v.service_key == key), key
        assert one.locks == tuple(lock for lock in everything.locks if lock.service_key == key), key
        assert one.waiting == tuple(v for v in everything.waiting if v.service_key == key), key
        # What the per-service answer shows as running, the whole answer shows too, word for word.
        for view in one.active:
            line = active_line(view, now)
            assert line in joined(status_message(one, now)) and line in joined(whole), key
    idle = _report(h, "orders")
    assert idle.active == () and idle.last is not None and idle.last.id == orders
    assert status_message(idle, now).text == "orders: No deployment is in progress"
    assert status_message(_report(h, "ui"), now).text == "ui: No deployment is in progress · locked"


def joined(message: Message) -> str:
    """Every mrkdwn text of a message, one per line."""
    return "\n".join(str(b["text"]["text"]) for b in message.blocks if b.get("type") == "section" and "text" in b)
