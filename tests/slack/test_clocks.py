"""One clock per fact (docs/ARCHITECTURE.md, "Clocks"), end to end: with the ECS sandbox's clock hours away from the
bot's, the root message, the thread, `/deploy status`, history and App Home give the same deployment the same
figures, and those figures are ECS's own."""

from __future__ import annotations

from datetime import timedelta

from bot.domain.durations import humanize
from bot.domain.enums import DeploymentStatus
from bot.domain.snapshot import ecs_ended, ecs_started
from tests.e2e_support import World, wait_for


def _text(message: dict[str, object]) -> str:
    return f"{message.get('text')} {message.get('blocks')}"


ECS_AHEAD = timedelta(hours=3)


def test_every_view_gives_ecs_figures_under_a_clock_offset(world: World) -> None:
    w = world
    w.ecs.advance(ECS_AHEAD.total_seconds())
    w.command("U0ALICE", "notifications bluegreen image=:3.5.0")
    dep = w.started()
    done = w.run_until(dep, lambda v: not v.is_active)
    w.drain()
    assert done.status is DeploymentStatus.SUCCEEDED and done.ecs_deployment_arn

    (ecs,) = w.ctx.usecases.deployments.ecs.describe("us-east-1", None, [done.ecs_deployment_arn]).snapshots
    began, ended = ecs_started(ecs), ecs_ended(ecs)
    assert began is not None and ended is not None
    took = humanize(ended - began)
    assert (done.started_at, done.finished_at) == (began, ended)

    root = _text(w.root(dep))
    finished = _text(w.thread(dep)[-1])
    w.command("U0ALICE", "history notifications")
    history = w.ephemeral_with("U0ALICE", "History of notifications")
    w.command("U0ALICE", "status notifications")
    status = w.ephemeral_with("U0ALICE", "notifications: No deployment is in progress")
    w.control("app_home_opened", {"user": "U0ALICE"})
    home = wait_for(lambda: w.snapshot()["views"]["U0ALICE"]["home"], what="Alice's Home tab")

    for where, text in {
        "root": root,
        "thread": finished,
        "history": _text(history),
        "status": _text(status),
        "app home": str(home["blocks"]),
    }.items():
        assert f"succeeded in {took}" in text.lower(), where
        # No figure is ECS's time measured against the bot's clock.
        assert humanize(ECS_AHEAD) not in text, where
    assert f"<!date^{int(ended.timestamp())}^" in root  # "finished …": ECS's finishedAt
    # notifications has no load balancer: no traffic bar saying "blue 100 % · green 0 %" after a success.
    assert "blue ▰" not in root and "none to shift" in root
