"""Fixtures of tests/slack: the example catalog, and a Slack stand-in of each test's own.

The outbox tests (test_sender, test_sender_faults, test_leases, test_actionable) count every call the stand-in got
and change its settings, which `store.reset()` keeps: each test starts its own stand-in (~50 ms), instead of the
one per module of tests/e2e_fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.domain.catalog.loader import Catalog
from sandbox.slack.server import SlackSandboxHandle, start
from tests.support import example_catalog


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    """The example catalog (services `catalog`, `ui`, …)."""
    return example_catalog()


@pytest.fixture
def slack() -> Iterator[SlackSandboxHandle]:
    """A running Slack stand-in, this test's alone."""
    with start(port=0) as handle:
        yield handle
