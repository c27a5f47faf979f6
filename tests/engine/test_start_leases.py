"""A /deploy accepted by a process that was killed before ECS started it is started by the survivor, once.

The deployment row and its root message are written before UpdateService; the process that wrote them owns the
start (`start_owner`, named after it, bot/db/leases.py) until it is started or queued. A real child process takes
the command and is killed (SIGKILL) before UpdateService: the survivor's next pass resumes the start as a queued one
(asking ECS first whether an UpdateService landed), instead of declaring it "never started" ten minutes later.
"""

from __future__ import annotations

from bot.domain.enums import DeploymentStatus
from tests.engine.test_decision_leases import run_child, survivor_passes
from tests.support import Harness

# Takes Alice's /deploy the way a listener does, and is killed before it reaches UpdateService.
STARTER = """
import sys, time
from bot.db.sessions import make_engine, session_factory
from bot.domain.grammar import parser as grammar
from tests.support import actor, example_catalog, make_usecases
url, ecs_url = sys.argv[1], sys.argv[2]
usecases = make_usecases(session_factory(make_engine(url)), ecs_url, example_catalog(), owner="replica-a")
def stopped(dep_id, *_):
    print("claimed", dep_id, flush=True)
    time.sleep(120)
usecases.deployments.starts.start = stopped
usecases.handle(actor("U0ALICE"), grammar.parse("orders image=:2.0.0", example_catalog()))
"""


def test_a_deploy_whose_process_was_killed_before_ecs_started_it_is_started_once_by_the_survivor(
    harness: Harness, database_url: str
) -> None:
    line = run_child(database_url, harness, STARTER).split()
    assert line[0] == "claimed", line
    dep = int(line[1])
    assert harness.view(dep).status is DeploymentStatus.REQUESTED and harness.control.calls("UpdateService") == []
    survivor_passes(harness, lambda: harness.view(dep).ecs_deployment_arn)  # now, not "never started" in 10 min
    assert len(harness.control.calls("UpdateService")) == 1
    done = harness.run_until(dep, lambda v: not v.is_active)
    assert done.status is DeploymentStatus.SUCCEEDED
