"""The ECS client cache: one parsed model for every (region, role) client, parsed before the first request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.snapshot import Credentials
from bot.ecs.clients import ClientCache, client_config
from bot.ecs.gateway import EcsGateway

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: a client that tried the network would fail


def _assume(role_arn: str, session_name: str) -> Credentials:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Credentials(access_key_id=role_arn[-1], secret_access_key="s", session_token="t", expiration=expires)


@pytest.fixture(autouse=True)
def _no_ambient_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def test_clients_of_different_roles_and_regions_share_one_parsed_model() -> None:
    cache = ClientCache(client_config(1, 1), endpoint_url=UNREACHABLE, assume_role=_assume)
    first = cache.get("eu-west-1", "arn:aws:iam::1:role/a")
    others = [cache.get("eu-west-1", "arn:aws:iam::1:role/b"), cache.get("us-east-1", None)]
    # A fresh botocore session per client would parse ECS's model again (~100 ms of CPU holding the GIL).
    described = first.meta.service_model._service_description  # type: ignore[attr-defined]
    assert all(c.meta.service_model._service_description is described for c in others)  # type: ignore[attr-defined]
    assert len({id(c) for c in [first, *others]}) == 3  # still one client (own credentials) per (region, role)


def test_each_role_client_signs_with_its_own_credentials() -> None:
    cache = ClientCache(client_config(1, 1), endpoint_url=UNREACHABLE, assume_role=_assume)
    a, b = cache.get("eu-west-1", "arn:aws:iam::1:role/a"), cache.get("eu-west-1", "arn:aws:iam::1:role/b")
    assert a._request_signer._credentials.access_key == "a"  # type: ignore[attr-defined]
    assert b._request_signer._credentials.access_key == "b"  # type: ignore[attr-defined]


@pytest.mark.parametrize("region", ["eu-west-1", None])
def test_warming_needs_no_network_and_no_credentials(region: str | None) -> None:
    gateway = EcsGateway(endpoint_url=UNREACHABLE)
    gateway.warm(region)  # raises if it resolved credentials or called anything
    assert gateway.client("eu-west-1").meta.service_model.service_name == "ecs"
