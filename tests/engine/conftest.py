"""Fixtures of the engine suites: the ECS sandbox (one per module) and use cases on a fresh database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.ecs import SandboxHandle
from tests.support import Control, Harness, example_catalog, make_usecases

CATALOG = example_catalog()


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    from sandbox.ecs.server import start

    with start(port=0) as handle:
        yield handle


@pytest.fixture
def harness(sandbox: SandboxHandle, sessions: sessionmaker[Session]) -> Harness:
    control = Control(sandbox.url)
    control.post("reset")
    control.post("speed", {"speed": 0})
    return Harness(make_usecases(sessions, sandbox.url, CATALOG), control, sessions)
