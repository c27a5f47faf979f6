"""The benchmarked world on loopback: ECS sandbox with N extra services, Slack stand-in, and the real bot over HTTP."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import boto3
from botocore.config import Config
from pydantic import SecretStr
from sqlalchemy import text

from bot.config import Settings
from bot.db import migrate
from bot.db.sessions import make_engine
from bot.domain.catalog.loader import Catalog, ServiceConfig, load_catalog
from bot.domain.enums import HookStage, Strategy
from bot.runtime import RunningBot, build_context, start_http
from bot.slack.context import BotContext
from sandbox.ecs.server import SandboxHandle
from sandbox.ecs.server import start as start_ecs
from sandbox.slack import workspace as ws
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET, SlackSandboxHandle
from sandbox.slack.server import start as start_slack

if TYPE_CHECKING:  # boto3-stubs is a development dependency
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_ecs.type_defs import DeploymentConfigurationTypeDef, LoadBalancerTypeDef

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = "unicorn-watch"
REGION = "us-east-1"
FAMILY = "bench"
PREFIX = "bench-"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/bench/0123456789abcdef"
_LISTENER = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/bench/0123456789abcdef/fedcba98"
# Blue/green, canary and linear on a load balancer need its advancedConfiguration (ECS, and so the sandbox and the
# bot's pre-flight, refuse them without it).
LOAD_BALANCERS: list[LoadBalancerTypeDef] = [
    {
        "targetGroupArn": TARGET_GROUP,
        "containerName": FAMILY,
        "containerPort": 8080,
        "advancedConfiguration": {
            "alternateTargetGroupArn": TARGET_GROUP.replace("/bench/", "/bench-green/"),
            "productionListenerRule": f"{_LISTENER}/0000000000000001",
            "testListenerRule": f"{_LISTENER}/0000000000000002",
            "roleArn": "arn:aws:iam::123456789012:role/ecsInfrastructureRoleForLoadBalancers",
        },
    }
]
# A realistic mix; every strategy but rolling shifts traffic, so those services get a load balancer.
STRATEGIES = (Strategy.CANARY, Strategy.BLUE_GREEN, Strategy.LINEAR, Strategy.ROLLING)


CHANNELS = 200  # live deployments are spread over this many channels (Slack's pace is per channel)


def bench_channels(count: int) -> list[str]:
    """`count` public channels with everyone and the bot in them, added to the stand-in's workspace."""
    ids = [f"C0BENCH{i:03d}" for i in range(count)]
    for i, cid in enumerate(ids):
        ws.ALL_CHANNELS.setdefault(cid, ws.Channel(cid, f"bench-{i}", (*ws.HUMAN_IDS, ws.BOT_USER_ID)))
    return ids


@dataclass
class Stack:
    """Everything a benchmark phase drives."""

    backend: str
    ecs: SandboxHandle
    slack: SlackSandboxHandle
    bot: RunningBot
    services: list[str]  # the bench services' catalog keys
    setup_seconds: dict[str, float]
    database_url: str = ""  # what the bot connects to (a child process may connect too)

    @property
    def ctx(self) -> BotContext:
        return self.bot.ctx


def isolate_aws() -> None:
    """Made-up credentials for boto3's request signing, and no user AWS config: nothing here leaves 127.0.0.1."""
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_CONFIG_FILE", os.devnull),
        ("AWS_SHARED_CREDENTIALS_FILE", os.devnull),
    ):
        os.environ[name] = value
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECS"):
        os.environ.pop(name, None)


def service_key(i: int) -> str:
    return f"{PREFIX}{i:04d}"


def bench_catalog(count: int, approvals: bool = False) -> Catalog:
    """The example catalog (what the demo deploys) plus `count` generated services (with `approvals`: approvers
    and a pause before production traffic, as `bench.seed.APPROVAL` starts them)."""
    example = load_catalog(ROOT / "services.example.yml")
    services: dict[str, ServiceConfig] = dict(example.services)
    for i in range(count):
        key = service_key(i)
        services[key] = ServiceConfig(
            key=key,
            cluster=CLUSTER,
            service=key,
            region=REGION,
            container=FAMILY,
            deployers=("U0ALICE",),
            strategy=STRATEGIES[i % len(STRATEGIES)],
            canary_percent=10.0,
            canary_bake=timedelta(minutes=1),
            linear_step_percent=50.0,
            step_bake=timedelta(minutes=1),
            bake=timedelta(minutes=1),
            approvers=(ws.APPROVERS_GROUP,) if approvals else (),
            approval_stages=(HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT,) if approvals else (),
        )
    return Catalog(services, "<bench>", tuple(services))


def _ecs_client(url: str) -> ECSClient:
    return boto3.client(
        "ecs",
        region_name=REGION,
        endpoint_url=url,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106 - made up
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def create_services(ecs_url: str, count: int) -> None:
    """CreateService `count` times (16 in flight), like the sandbox's own 1,000-deployment test."""
    client = _ecs_client(ecs_url)
    client.register_task_definition(
        family=FAMILY,
        containerDefinitions=[
            {
                "name": FAMILY,
                "image": "public.ecr.aws/unicorn-watch/bench:1.0",
                "essential": True,
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )
    config: DeploymentConfigurationTypeDef = {
        "strategy": "ROLLING",
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
    }

    def create(i: int) -> None:
        client.create_service(
            cluster=CLUSTER,
            serviceName=service_key(i),
            taskDefinition=FAMILY,
            desiredCount=2,
            loadBalancers=LOAD_BALANCERS,
            deploymentConfiguration=config,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, range(count)))


def settle(ecs: SandboxHandle, step: float = 30.0, limit: int = 40) -> None:
    """Advance the sandbox until no deployment is PENDING or IN_PROGRESS (the services' first deployments)."""
    for _ in range(limit):
        statuses = {d.status for d in ecs.sandbox.engine.store.deployments.values()}
        if not statuses & {"PENDING", "IN_PROGRESS"}:
            return
        ecs.sandbox.advance(step)
    raise RuntimeError("the sandbox's initial deployments never finished")


@contextmanager
def database(backend_url: str | None) -> Iterator[str]:
    """A temporary SQLite file, or a throw-away schema on the given PostgreSQL database."""
    if backend_url is None:
        with tempfile.TemporaryDirectory(prefix="deploybot-bench-") as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite"
        return
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = make_engine(backend_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        sep = "&" if "?" in backend_url else "?"
        yield f"{backend_url}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def running_stack(
    backend: str,
    backend_url: str | None,
    count: int,
    *,
    create: bool = True,
    approvals: bool = False,
    poll_seconds: float = 5.0,
) -> Iterator[Stack]:
    """Start the sandbox (clock frozen: only the benchmark moves it), the stand-in and the bot; stop all on exit.

    The catalog has `count` bench services; with `create` they are made in the sandbox over HTTP and settled
    (without it the phase seeds them itself, see `bench.seed`).
    """
    import time

    isolate_aws()
    timings: dict[str, float] = {}
    with ExitStack() as stack:
        url = stack.enter_context(database(backend_url))
        ecs = stack.enter_context(start_ecs(port=0, speed=0.0))
        slack = stack.enter_context(
            start_slack(port=0, signing_secret=DEFAULT_SIGNING_SECRET, bot_token=DEFAULT_BOT_TOKEN)
        )
        started = time.perf_counter()
        if create:
            create_services(ecs.url, count)
            settle(ecs)
        timings["create services"] = time.perf_counter() - started
        catalog = bench_catalog(count, approvals)
        settings = Settings(
            slack_bot_token=SecretStr(DEFAULT_BOT_TOKEN),
            slack_signing_secret=SecretStr(DEFAULT_SIGNING_SECRET),
            slack_api_url=slack.api_url,
            database_url=SecretStr(url),
            poll_seconds=poll_seconds,
            aws_region=REGION,
            aws_endpoint_url_ecs=ecs.url,
        )
        ctx = build_context(settings, catalog, ecs_endpoint=ecs.url)
        migrate.upgrade(ctx.db)
        # Jobs off: the benchmark runs reconcile and drain passes itself, so each one is timed alone.
        bot = start_http(ctx, port=0, run_jobs=False)
        stack.callback(bot.stop)
        slack.set_bot_url(f"{bot.url}/slack/events")
        stack.callback(slack.set_bot_url, None)
        yield Stack(backend, ecs, slack, bot, [service_key(i) for i in range(count)], timings, url)
