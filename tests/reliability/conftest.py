"""The reliability suite: the bot as an operator sees it — over HTTP, against the ECS sandbox and the Slack stand-in.

`make test` runs each scenario at a small scale; `make soak` (DEPLOYBOT_SOAK=1) at the scale RELIABILITY.md reports.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models import Decision, Deployment
from sandbox.slack.server import DEFAULT_SIGNING_SECRET
from tests.e2e_support import World
from tests.support import Control, Harness, example_catalog, make_usecases

SOAK = os.environ.get("DEPLOYBOT_SOAK") == "1"
CHANGES = ("UpdateService", "RegisterTaskDefinition", "ContinueServiceDeployment", "StopServiceDeployment")
# Under `make soak` (many workers, each handed one test at a time) the slowest modules go first, so no long test
# starts last while the other workers sit idle. Slowest first at soak scale (real processes, Slack's pace, ECS
# latency), the rest after in their own order.
SOAK_SLOWEST_FIRST = (
    "test_replicas.py",
    "test_crash.py",
    "test_slack_faults.py",
    "test_slow_slack.py",
    "test_ecs_faults.py",
    "test_fuzz.py",
)


def backend(database_url: str) -> str:
    """`sqlite` or `postgresql`, for a figures row."""
    return database_url.split(":", 1)[0].split("+", 1)[0]


def scale(fast: int, soak: int) -> int:
    """How many of something to do: `fast` under `make test`, `soak` under `make soak`."""
    return soak if SOAK else fast


@dataclass
class Reply:
    """What the bot answered one HTTP request, and how long the answer took."""

    status: int
    body: bytes
    seconds: float


def post(url: str, body: bytes, content_type: str, headers: dict[str, str]) -> Reply:
    """POST raw bytes to the bot and time the answer (the ack Slack waits 3 s for)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type, **headers})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return Reply(resp.status, resp.read(), time.monotonic() - started)
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.read(), time.monotonic() - started)


def sign(secret: str, body: bytes, stamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature headers over raw bytes (slack_sdk's own signer insists on UTF-8)."""
    ts = str(int(time.time()) if stamp is None else stamp)
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def signed(world: World, body: bytes, content_type: str, secret: str = DEFAULT_SIGNING_SECRET) -> Reply:
    """POST a correctly signed request to the bot's /slack/events."""
    return post(f"{world.bot.url}/slack/events", body, content_type, sign(secret, body))


@dataclass
class Errors(logging.Handler):
    """Every ERROR log line while installed: a listener that raised, a worker job that failed."""

    records: list[logging.LogRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        logging.Handler.__init__(self, logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def last(self) -> str:
        """The newest error with its traceback, for an assertion message."""
        if not self.records:
            return "(no error logged)"
        record = self.records[-1]
        return (
            f"{record.getMessage()}\n{logging.Formatter().formatException(record.exc_info) if record.exc_info else ''}"
        )

    def __hash__(self) -> int:
        return id(self)


@pytest.fixture
def errors() -> Iterator[Errors]:
    handler = Errors()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def side_effects(world: World) -> dict[str, int]:
    """Rows and ECS changes that no invalid request may cause."""
    with world.ctx.sessions() as session:
        rows = {
            "deployments": session.scalar(select(func.count()).select_from(Deployment)) or 0,
            "decisions": session.scalar(select(func.count()).select_from(Decision)) or 0,
        }
    return rows | {op: len(world.ecs.calls(op)) for op in CHANGES}


@pytest.fixture
def harness(ecs_url: str, sessions: sessionmaker[Session]) -> Harness:
    """Use cases on a fresh database against the ECS sandbox (no Slack)."""
    control = Control(ecs_url)
    control.post("reset")
    control.post("speed", {"speed": 0})
    return Harness(make_usecases(sessions, ecs_url, example_catalog()), control, sessions)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under DEPLOYBOT_SOAK only: the slowest modules' tests first, one to each worker before any gets a second."""
    if not SOAK:
        return
    rank = {name: i for i, name in enumerate(SOAK_SLOWEST_FIRST)}
    ranked = sorted(items, key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a module
    # xdist's load scheduling starts each worker with two consecutive tests: pair the k-th slowest with the
    # (workers + k)-th, or the two slowest would queue on one worker.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    head, rest = ranked[: 2 * workers], ranked[2 * workers :]
    half = (len(head) + 1) // 2
    paired = [t for pair in itertools.zip_longest(head[:half], head[half:]) for t in pair if t is not None]
    items[:] = paired + rest
