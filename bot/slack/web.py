"""The ASGI app: Slack's requests, health, readiness and Prometheus metrics."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from slack_bolt import App
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.db.gauges import scrape_registry
from bot.db.sessions import DatabaseUnavailable, check_connection
from bot.logs import get_logger
from bot.slack.bolt import signing_secret
from bot.slack.context import BotContext
from bot.slack.inbound import decode, shape_problem, signature_ok
from bot.slack.metrics import ACK_SECONDS
from bot.slack.observe import UNVERIFIED, ack_kind

log = get_logger(__name__)


def build_asgi(ctx: BotContext, app: App) -> Starlette:
    """Routes: POST /slack/events, GET /healthz, GET /readyz, GET /metrics."""

    registry = scrape_registry(ctx.sessions, ctx.clock)
    secret = signing_secret(ctx)

    async def slack_events(request: Request) -> Response:
        arrived = time.monotonic()  # the ack latency Slack sees starts here, before the body is even read
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        # Nothing in the request is trusted, or even parsed, before its signature checks out (Bolt's own check
        # raises on a non-numeric timestamp and then hands the unverified body to the error handler).
        if not signature_ok(secret, headers, body):
            ACK_SECONDS.labels(UNVERIFIED).observe(time.monotonic() - arrived)
            return JSONResponse({"error": "invalid request"}, status_code=401)
        decoded = decode(body, headers.get("content-type", ""))
        problem = "the body is not a form, a payload or a JSON object" if decoded is None else shape_problem(decoded)
        if problem is not None:
            log.warning("refused a signed but malformed request: %s", problem)
            ACK_SECONDS.labels("malformed").observe(time.monotonic() - arrived)
            return JSONResponse({"error": "bad request", "problem": problem}, status_code=400)
        bolt_request = to_bolt_request(request, body)
        # The listeners only ack and queue the work, so this returns in milliseconds (off the event loop anyway).
        response = await run_in_threadpool(app.dispatch, bolt_request)
        answer = to_starlette_response(response)
        ACK_SECONDS.labels(ack_kind(bolt_request.context, bolt_request.body)).observe(time.monotonic() - arrived)
        return answer

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    async def readyz(_: Request) -> Response:
        try:
            await run_in_threadpool(check_connection, ctx.db)
        except DatabaseUnavailable as exc:
            return JSONResponse({"ok": False, "database": str(exc)}, status_code=503)
        refused = ctx.health.blocked
        if refused is not None:
            # The token or installation is broken: this replica cannot do its job until a person fixes it.
            return JSONResponse({"ok": False, "database": "reachable", "slack": refused}, status_code=503)
        return JSONResponse({"ok": True, "database": "reachable", "slack": "ok"})

    async def metrics(_: Request) -> Response:
        # The database's gauges are read at scrape time: off the event loop, like every database call.
        return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ]
    )
