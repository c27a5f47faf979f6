"""The gateway's metrics against the ECS sandbox: every call, every failure by kind, every throttled attempt."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from bot.domain.catalog.loader import load_catalog
from bot.domain.catalog.schema import ServiceConfig
from bot.ecs.gateway import EcsError, EcsGateway, EcsUnavailable
from bot.ecs.metrics import error_kind
from sandbox.ecs import SandboxHandle
from tests.support import Control

ROOT = Path(__file__).resolve().parents[2]
OP = "DescribeServices"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[SandboxHandle]:
    from sandbox.ecs.server import start

    with start(port=0) as handle:
        yield handle


@pytest.fixture
def control(sandbox: SandboxHandle) -> Iterator[Control]:
    ctl = Control(sandbox.url)
    ctl.post("reset")
    yield ctl
    ctl.post("reset")


@pytest.fixture(scope="module")
def catalog_service() -> ServiceConfig:
    return load_catalog(ROOT / "services.example.yml").services["catalog"]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def counts(operation: str = OP) -> dict[str, float]:
    """The gateway's counters for one operation."""
    return {
        "calls": sample("deploybot_ecs_calls_total", operation=operation),
        "throttles": sample("deploybot_ecs_throttles_total", operation=operation),
        "timed": sample("deploybot_ecs_call_duration_seconds_count", operation=operation),
        **{
            kind: sample("deploybot_ecs_errors_total", operation=operation, kind=kind)
            for kind in ("throttled", "server", "connection", "refused")
        },
    }


def delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in before if after[k] != before[k]}


def test_a_successful_call_is_counted_and_timed(control: Control, catalog_service: ServiceConfig) -> None:
    gw = EcsGateway(endpoint_url=control.url, max_attempts=2)
    before = counts()
    gw.read_service(catalog_service)
    assert delta(before, counts()) == {"calls": 1, "timed": 1}


def test_every_throttled_attempt_counts_and_the_failed_call_once(
    control: Control, catalog_service: ServiceConfig
) -> None:
    gw = EcsGateway(endpoint_url=control.url, max_attempts=2)
    control.post("fault", {"operation": OP, "code": "ThrottlingException", "rate": 1})
    before = counts()
    with pytest.raises(EcsUnavailable):
        gw.read_service(catalog_service)
    # botocore tried twice and was throttled twice; the bot saw one failed call.
    assert delta(before, counts()) == {"calls": 1, "timed": 1, "throttles": 2, "throttled": 1}


def test_server_errors_and_refusals_are_told_apart(control: Control, catalog_service: ServiceConfig) -> None:
    gw = EcsGateway(endpoint_url=control.url, max_attempts=1)
    control.post("fault", {"operation": OP, "code": "ServerException", "rate": 1})
    before = counts()
    with pytest.raises(EcsUnavailable):
        gw.read_service(catalog_service)
    assert delta(before, counts()) == {"calls": 1, "timed": 1, "server": 1}
    control.post("fault", {"operation": OP, "code": "ServerException", "rate": 0})
    before = counts()
    with pytest.raises(EcsError) as refused:
        gw.read_service(replace(catalog_service, cluster="no-such-cluster"))
    assert not isinstance(refused.value, EcsUnavailable)
    assert delta(before, counts()) == {"calls": 1, "timed": 1, "refused": 1}


def test_an_unreachable_endpoint_is_a_connection_error(catalog_service: ServiceConfig) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: connections are refused
        gw = EcsGateway(endpoint_url=f"http://127.0.0.1:{port}", max_attempts=1, connect_timeout=1)
        before = counts()
        with pytest.raises(EcsUnavailable):
            gw.read_service(catalog_service)
    assert delta(before, counts()) == {"calls": 1, "timed": 1, "connection": 1}


@pytest.mark.parametrize(
    ("code", "temporary", "kind"),
    [
        ("ThrottlingException", True, "throttled"),
        ("RequestLimitExceeded", True, "throttled"),
        ("ServerException", True, "server"),
        ("ServiceUnavailableException", True, "server"),
        ("ClusterNotFoundException", False, "refused"),
        ("InvalidParameterException", False, "refused"),
    ],
)
def test_error_kind(code: str, temporary: bool, kind: str) -> None:
    assert error_kind(code, temporary) == kind
