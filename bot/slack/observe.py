"""What a Slack request is, for logs and metrics: its kind, a request id, and who and where it comes from.

`bind_request` is a global Bolt middleware: it runs after Bolt's own checks (the signature, in HTTP mode), so the
fields it binds come from verified requests only. Every line logged while the request is handled carries
`request_id`, `request_kind`, `user`, `channel` and `team`; the error handler shows the same `request_id` to the person
as its reference, so an on-call engineer can find every line of a request from a screenshot.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from slack_bolt import App, BoltContext, BoltResponse

from bot.logs import bind_fresh, get_logger
from bot.slack.context import BotContext
from bot.slack.metrics import metered

log = get_logger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
REQUEST_ID = "deploybot_request_id"  # the key in Bolt's request context
# The `kind` label of the ack metrics and the logs' `kind` field: a closed set, whatever a request claims to be.
INTERACTIVE_KINDS = frozenset(
    {"block_actions", "view_submission", "view_closed", "block_suggestion", "shortcut", "message_action"}
)
UNVERIFIED = "unverified"  # refused before Bolt's checks passed: its body says nothing we may believe
KINDS = ("command", *sorted(INTERACTIVE_KINDS), "event", "url_verification", "other", UNVERIFIED)


def request_kind(body: Mapping[str, Any] | None) -> str:
    """`command`, an interactivity payload's type, `event`, `url_verification` or `other` (never free text)."""
    if not body:
        return "other"
    if body.get("command"):
        return "command"
    kind = body.get("type")
    if kind in INTERACTIVE_KINDS:
        return str(kind)
    if kind == "event_callback":
        return "event"
    return "url_verification" if kind == "url_verification" else "other"


def ack_kind(context: Mapping[str, Any], body: Mapping[str, Any] | None) -> str:
    """The kind of a request that reached `bind_request` (so passed Bolt's checks), else `unverified`."""
    return request_kind(body) if REQUEST_ID in context else UNVERIFIED


def new_request_id() -> str:
    """A short reference for one request (also what the person is told when something fails)."""
    return uuid.uuid4().hex[:8]


def request_id(context: Mapping[str, Any]) -> str:
    """The request's id, given by `bind_request` (a new one if the request never got that far)."""
    return str(context.get(REQUEST_ID) or new_request_id())


def bind_request(context: BoltContext, body: dict[str, Any], next: Callable[[], BoltResponse]) -> BoltResponse:
    """Give the request an id and bind it, with the request's kind, user, channel and team, to every log line."""
    rid = new_request_id()
    context[REQUEST_ID] = rid
    # Bolt builds a plain WebClient for each request; the listeners get a counted copy of it.
    context["client"] = metered(context.client)
    # Bolt calls the middleware and then the listener in turn (not nested), so the fields are bound without a scope:
    # the thread's context is a copy per request over HTTP, and is replaced at the next request in Socket Mode.
    bind_fresh(
        request_id=rid,
        request_kind=request_kind(body),
        user=context.user_id,
        channel=context.channel_id,
        team=context.team_id,
    )
    log.debug("slack request")
    return next()


class ContextCopyingExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks see the submitting thread's log context (contextvars do not cross threads)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run `fn` in a copy of the caller's context."""
        context = contextvars.copy_context()

        def run() -> T:
            return context.run(fn, *args, **kwargs)

        return super().submit(run)


def register(app: App, ctx: BotContext) -> None:
    """Install `bind_request` (as a registrar, like the listeners)."""
    app.use(bind_request)
