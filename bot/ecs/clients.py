"""boto3 ECS clients, one per (region, role), without botocore retries, and AssumeRole credentials that refresh."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import CredentialProvider, CredentialResolver, RefreshableCredentials

from bot.domain.snapshot import Credentials
from bot.ecs.metrics import count_throttled_attempt
from bot.ecs.parsing import AnswerMemo, ParserFactory

if TYPE_CHECKING:  # boto3-stubs is a development dependency
    from mypy_boto3_ecs import ECSClient

SESSION_NAME = "deploybot"
AssumeRole = Callable[[str, str], Credentials]

# One botocore data loader for every client of the process. Each (region, role) client needs a session of its own
# (its credential provider), and a fresh session parses ECS's model and the endpoint rules again: ~80-200 ms of
# CPU in json.loads, which holds the interpreter lock throughout and stalls every ack meanwhile. The loader caches
# what it parsed, so a second client costs ~8 ms.
_LOADER_LOCK = threading.Lock()
_LOADER: dict[str, Any] = {}


def _session() -> botocore.session.Session:
    """A botocore session sharing the process's data loader."""
    session = botocore.session.get_session()
    with _LOADER_LOCK:
        loader = _LOADER.setdefault("loader", session.get_component("data_loader"))
        session.register_component("data_loader", loader)
    return session


def warm_models(region: str, config: Config) -> None:
    """Parse what an ECS client needs before serving, so the first `/deploy` does not pay for it (no network)."""
    # Static placeholder keys: resolving real credentials could call STS or the instance metadata service.
    boto3.Session(botocore_session=_session()).client(
        "ecs",
        region_name=region,
        aws_access_key_id="warm",
        aws_secret_access_key="warm",  # noqa: S106 - a placeholder, never sent anywhere
        config=config,
    )


def client_config(connect_timeout: float, read_timeout: float) -> Config:
    """botocore settings shared by every client: one attempt per call, bounded timeouts.

    The gateway retries itself (bot/ecs/gateway.py): botocore's standard and adaptive modes share a retry quota
    (500 tokens, 14 per retried 5xx) that sustained 5xx at 30 % drains in about 400 calls, after which nothing is
    retried (figures in RELIABILITY.md), and they retry UpdateService and ContinueServiceDeployment after a 5xx or
    a timeout, when the first call may have landed. `total_max_attempts` counts the first call too.
    """
    return Config(
        retries={"mode": "standard", "total_max_attempts": 1},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        user_agent_extra="deploybot",
    )


def sts_assume_role(region: str, config: Config) -> AssumeRole:
    """An AssumeRole call through the regional STS endpoint (the default when no fake is injected)."""

    # AssumeRole is idempotent: botocore may retry it (the ECS calls' single attempt is about ECS's quota).
    sts_config = config.merge(Config(retries={"mode": "standard", "total_max_attempts": 3}))

    def assume(role_arn: str, session_name: str) -> Credentials:
        sts = boto3.client("sts", region_name=region, config=sts_config)
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return Credentials(
            access_key_id=answer["AccessKeyId"],
            secret_access_key=answer["SecretAccessKey"],
            session_token=answer["SessionToken"],
            expiration=answer["Expiration"],
        )

    return assume


class _AssumeRoleProvider(CredentialProvider):
    """Hands botocore refreshable credentials; botocore calls `refresh` before they expire."""

    METHOD = "deploybot-assume-role"
    CANONICAL_NAME = "deploybot-assume-role"

    def __init__(self, assume_role: AssumeRole, role_arn: str) -> None:
        super().__init__()
        self._assume_role = assume_role
        self._role_arn = role_arn

    def _fetch(self) -> dict[str, str]:
        creds = self._assume_role(self._role_arn, SESSION_NAME)
        return {
            "access_key": creds.access_key_id,
            "secret_key": creds.secret_access_key,
            "token": creds.session_token,
            "expiry_time": creds.expiration.isoformat(),
        }

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(
            metadata=self._fetch(), refresh_using=self._fetch, method=self.METHOD
        )


class ClientCache:
    """Thread-safe cache of ECS clients keyed by (region, role_arn), sharing one memo of ECS's answers."""

    def __init__(
        self,
        config: Config,
        endpoint_url: str | None = None,
        assume_role: AssumeRole | None = None,
    ) -> None:
        self._config = config
        self._endpoint_url = endpoint_url
        self._assume_role = assume_role
        self._clients: dict[tuple[str, str | None], ECSClient] = {}
        self._lock = threading.Lock()
        self.memo = AnswerMemo()  # bot/ecs/parsing.py: a deployment answered the same is not parsed again

    def get(self, region: str, role_arn: str | None) -> ECSClient:
        """The ECS client for this region and role, created on first use."""
        key = (region, role_arn)
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._create(region, role_arn)
            return client

    def _create(self, region: str, role_arn: str | None) -> ECSClient:
        session = _session()
        if role_arn:
            assume = self._assume_role or sts_assume_role(region, self._config)
            provider = _AssumeRoleProvider(assume, role_arn)
            session.register_component("credential_provider", CredentialResolver([provider]))
        session.register_component("response_parser_factory", ParserFactory(self.memo))
        # With endpoint_url None boto3 applies AWS_ENDPOINT_URL_ECS itself; an explicit one wins.
        client = boto3.Session(botocore_session=session).client(
            "ecs", region_name=region, endpoint_url=self._endpoint_url, config=self._config
        )
        # Every attempt botocore makes, so throttles it retried away are counted too.
        client.meta.events.register("needs-retry.ecs", count_throttled_attempt)
        return client
