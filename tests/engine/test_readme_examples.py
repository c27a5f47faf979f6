"""Every `/deploy` example in the README works against the ECS sandbox the demo runs (issue 12, item 5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.domain.enums import DeploymentStatus
from bot.domain.grammar import parser as grammar
from tests.support import Harness, actor, example_catalog

ROOT = Path(__file__).resolve().parents[2]
CATALOG = example_catalog()
EXAMPLE = re.compile(r"`(/deploy[^`]*)`")
# What a person would type for the README's placeholders.
PLACEHOLDERS = {"<service>": "catalog", "[service]": "", "[n]": "5", "[reason]": "checkout errors"}


def readme_examples() -> list[str]:
    """The commands of the README's "Using it in Slack" table and its walkthrough, placeholders filled in."""
    text = (ROOT / "README.md").read_text()
    found: list[str] = []
    for example in EXAMPLE.findall(text):
        command = " ".join(_filled(example).split())
        if "…" not in command and command not in found:  # `/deploy … image=` is prose, not an example
            found.append(command)
    return found


def _filled(example: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        example = example.replace(placeholder, value)
    return example


def starts_a_deployment(command: str) -> bool:
    return isinstance(grammar.parse(command.removeprefix("/deploy"), CATALOG), grammar.Deploy)


EXAMPLES = readme_examples()
DEPLOYS = [c for c in EXAMPLES if starts_a_deployment(c)]


def test_the_readme_has_examples_of_every_kind() -> None:
    verbs = {type(grammar.parse(c.removeprefix("/deploy"), CATALOG)).__name__ for c in EXAMPLES}
    assert {"Deploy", "OpenForm", "Status", "History", "Approve", "Rollback", "Lock", "Unlock"} <= verbs, EXAMPLES
    assert "/deploy catalog canary 10% image=:1.3.0" in EXAMPLES  # the walkthrough's, the demo page's hint


@pytest.mark.parametrize("command", DEPLOYS)
def test_every_readme_deploy_example_starts_a_deployment_that_changes_something(harness: Harness, command: str) -> None:
    answer = harness.usecases.handle(actor(), grammar.parse(command.removeprefix("/deploy"), CATALOG))
    assert answer.ok and answer.deployment_id is not None, (command, answer.text)
    view = harness.run_until(answer.deployment_id, lambda v: v.ecs_deployment_arn is not None)
    assert view.status is not DeploymentStatus.FAILED, (command, view.status_reason)
    # Something changes: a new image, or another task definition (never 1.2.1 → 1.2.1).
    assert view.taskdef_to != view.taskdef_from, (command, view.taskdef_from)
    if "image=" in command:
        assert view.image_to != view.image_from and view.image_to is not None
        assert view.image_to.endswith(command.split("image=")[1].split(maxsplit=1)[0]), view.image_to


def test_every_other_readme_example_answers_as_the_table_says(harness: Harness) -> None:
    others = [c for c in EXAMPLES if c not in DEPLOYS]
    start = harness.usecases.handle(actor(), grammar.parse("catalog canary 10% image=:1.3.0", CATALOG))
    assert start.ok and start.deployment_id is not None
    harness.run_until(start.deployment_id, lambda v: v.status is DeploymentStatus.AWAITING_APPROVAL)
    # Who runs each: an approver approves, the on-call responder rolls back and locks; the rest, the deployer.
    who = {"Approve": "U0BOB", "Rollback": "U0CAROL", "Lock": "U0CAROL", "Unlock": "U0CAROL"}
    order = ["OpenForm", "Status", "History", "Approve", "Rollback", "Lock", "Unlock"]
    parsed = sorted(
        ((c, grammar.parse(c.removeprefix("/deploy"), CATALOG)) for c in others),
        key=lambda pair: order.index(type(pair[1]).__name__),
    )
    done: set[str] = set()
    for command, cmd in parsed:
        kind = type(cmd).__name__
        if kind == "OpenForm" or kind in done:
            continue  # the form is the Slack layer's (it parses, which is the promise); one rollback is enough
        done.add(kind)
        channel = "C0INC42" if kind == "Rollback" else "C0DEPLOYS"
        answer = harness.usecases.handle(actor(who.get(kind, "U0ALICE"), channel), cmd)
        assert answer.ok, (command, answer.text)
        if kind == "Approve":  # ECS takes the approval before anyone rolls back
            harness.run_until(start.deployment_id, lambda v: v.status is not DeploymentStatus.AWAITING_APPROVAL)
