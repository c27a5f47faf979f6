"""Fixtures of the end-to-end suites (tests/slack, tests/reliability): the ECS sandbox and the Slack stand-in (one
each per module; tests/slack/conftest.py gives each of its tests a stand-in of its own), and a bot. Registered for
every suite by `pytest_plugins` in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.slack.server import SlackSandboxHandle
from tests.e2e_support import World, running_world


@pytest.fixture(scope="module")
def ecs_url() -> Iterator[str]:
    from sandbox.ecs.server import start

    with start(port=0) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackSandboxHandle]:
    from sandbox.slack.server import start

    with start(port=0) as handle:
        yield handle


@pytest.fixture
def world(database_url: str, slack: SlackSandboxHandle, ecs_url: str) -> Iterator[World]:
    slack.store.reset()
    with running_world(database_url, slack, ecs_url) as w:
        w.ecs.post("reset")
        w.ecs.post("speed", {"speed": 0})
        yield w
