"""The bot's runtime: build the shared objects, serve Slack over HTTP or Socket Mode, run the jobs."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler

from bot.config import Settings
from bot.db import migrate
from bot.db.sessions import make_engine, session_factory
from bot.domain.catalog.loader import Catalog
from bot.ecs.gateway import EcsGateway
from bot.engine.usecases import UseCases
from bot.logs import configure_logging, get_logger
from bot.scheduler import build_scheduler
from bot.slack.channels import ChannelAccessCheck
from bot.slack.clients import web_client
from bot.slack.context import BotContext, slack_membership
from bot.slack.health import SlackHealth
from bot.slack.sender import OutboxSender
from bot.slack.web import build_asgi
from models import utcnow

log = get_logger(__name__)


def owner_name() -> str:
    """This process's name in leases and outbox claims."""
    return f"{socket.gethostname()}:{os.getpid()}"


def build_context(
    settings: Settings, catalog: Catalog, *, ecs_endpoint: str | None = None, clock: Callable[[], datetime] = utcnow
) -> BotContext:
    """Database, Slack client, membership cache, ECS gateway and use cases for one process."""
    db = make_engine(settings.database_url_value)
    sessions = session_factory(db)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = web_client(token, settings.slack_api_url)
    health = SlackHealth()
    membership = slack_membership(client, clock, health)
    gateway = EcsGateway(endpoint_url=ecs_endpoint or settings.aws_endpoint_url_ecs)
    gateway.warm(settings.aws_region)
    channels = ChannelAccessCheck(client, health)
    usecases = UseCases(
        sessions,
        catalog,
        gateway,
        membership,
        clock=clock,
        owner=owner_name(),
        channels=channels,
        poll_interval=timedelta(seconds=settings.poll_seconds),
        lease=timedelta(seconds=settings.lease_seconds),
    )
    return BotContext(settings, catalog, db, sessions, client, usecases, membership, clock, health)


def build_sender(ctx: BotContext, lanes: int | None = None) -> OutboxSender:
    """The outbox drainer for this process (with DEPLOYBOT_SLACK_LANES lanes unless told: the benchmark compares)."""
    client = web_client(ctx.client.token, ctx.settings.slack_api_url)
    lease = timedelta(seconds=ctx.settings.lease_seconds)
    return OutboxSender(
        ctx.sessions,
        client,
        ctx.catalog,
        clock=ctx.clock,
        owner=owner_name(),
        health=ctx.health,
        grace=lease,
        lanes=lanes or ctx.settings.slack_lanes,
    )


@dataclass
class RunningBot:
    """A bot serving HTTP in background threads (tests and the demo)."""

    ctx: BotContext
    server: uvicorn.Server
    thread: threading.Thread
    scheduler: BackgroundScheduler | None
    port: int

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:PORT (Slack posts to url + /slack/events)."""
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """Stop serving and the jobs, and wait for the threads."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.ctx.stop()


def start_http(ctx: BotContext, port: int = 0, *, run_jobs: bool = True, host: str = "127.0.0.1") -> RunningBot:
    """Serve the bot on `host:port` from a background thread; with `run_jobs`, also the scheduler."""
    from bot.app import build_app

    asgi = build_asgi(ctx, build_app(ctx))
    config = uvicorn.Config(
        asgi, host=host, port=port, log_config=None, log_level="warning", access_log=False, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="deploybot-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"the bot's HTTP server did not start on {host}:{port}")
        time.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    scheduler = build_scheduler(ctx, build_sender(ctx)) if run_jobs else None
    if scheduler is not None:
        scheduler.start()
    return RunningBot(ctx, server, thread, scheduler, bound)


def serve(settings: Settings, catalog: Catalog) -> int:
    """`deploybot run`: migrate, then serve until SIGINT/SIGTERM (Socket Mode when SLACK_APP_TOKEN is set)."""
    from bot.app import build_app

    configure_logging(settings.log_level, settings.log_format, secrets=settings.secret_values())
    ctx = build_context(settings, catalog)
    migrate.upgrade(ctx.db)
    scheduler = build_scheduler(ctx, build_sender(ctx))
    scheduler.start()
    app = build_app(ctx)
    try:
        if settings.slack_app_token is not None:
            from bot.slack.socket_mode import serve_socket_mode

            serve_socket_mode(app, settings.slack_app_token.get_secret_value())
        else:
            log.info("serving Slack over HTTP", port=settings.port)
            # log_config=None: uvicorn's lines go through our handler; no access log (one line per scrape and per
            # Slack request would bury the rest, and the Slack requests are counted in /metrics).
            uvicorn.run(
                build_asgi(ctx, app),
                host="0.0.0.0",  # noqa: S104 - a container serves on every interface
                port=settings.port,
                log_config=None,
                access_log=False,
            )
    finally:
        # The drain in flight finishes (recording or handing back its claims), queued requests finish or are
        # answered "restarting", and the database closes: a stop loses nothing and leaves no row in doubt.
        scheduler.shutdown(wait=True)
        ctx.stop()
        log.info("deploybot stopped cleanly")
    return 0
