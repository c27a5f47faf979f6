"""One sandbox per test session, reset (and frozen in time) before every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from mypy_boto3_ecs import ECSClient

from sandbox.ecs import SandboxHandle, start

from .helpers import Control


@pytest.fixture(scope="session")
def sandbox() -> Iterator[SandboxHandle]:
    with start() as handle:
        yield handle


@pytest.fixture(scope="session")
def control(sandbox: SandboxHandle) -> Control:
    return Control(sandbox.url)


@pytest.fixture(autouse=True)
def _fresh(control: Control) -> None:
    control.post("reset")
    # Speed 0: only /_sandbox/advance moves the clock, so observed sequences are deterministic.
    control.post("speed", {"speed": 0})


def _client(url: str, **config: Any) -> ECSClient:
    return boto3.client(
        "ecs",
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(**config),
    )


@pytest.fixture(scope="session")
def ecs(sandbox: SandboxHandle) -> ECSClient:
    return _client(sandbox.url)


@pytest.fixture(scope="session")
def ecs_strict(sandbox: SandboxHandle) -> ECSClient:
    """A client that does not retry, for asserting error codes.

    botocore's `max_attempts` counts retries (1 means two calls); `total_max_attempts` counts calls.
    """
    return _client(sandbox.url, retries={"mode": "standard", "total_max_attempts": 1})
