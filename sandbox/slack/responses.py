"""`POST` to a response_url as Slack serves it: five uses in thirty minutes, and the faults a test injects.

What Slack documents: a response_url works up to five times within thirty minutes; hooks.slack.com answers errors
with an HTTP status and a short code (the incoming-webhook changelog of 2016-05-17: 400 `invalid_payload`, 404
`channel_not_found`, 500 `rollup_error`…); its edge answers a 5xx with an HTML page, and a 429 carries Retry-After
(slack_sdk's WebhookClient tests and retry handlers). What it does not: the body of an expired or used-up URL's
404 (JSON `{"ok": false, "error": "expired_url"}` or a bare code), and whether a POST that failed (429, 5xx) spends
one of the five uses. Each is a switch (`Settings.response_url_errors`, `response_url_faults_spend_use`).
Faults name the method `response_url` (a `*` rule is for the Web API only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.slack.blockkit import BlockError
from sandbox.slack.faults import Fault, Reply
from sandbox.slack.state import ResponseUrl, Store

METHOD = "response_url"
Respond = Callable[[ResponseUrl, dict[str, Any]], None]


@dataclass(frozen=True)
class ResponseCall:
    """One POST to a response_url, as the call log keeps it: what it answered and whether the message was stored."""

    url: str
    time: float
    status: int
    stored: bool
    fault: str | None = None
    text: str = ""  # the message's text, as the bot sent it (the first 200 characters)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly copy."""
        return dict(self.__dict__)


class Responses:
    """Serves response_url POSTs: the use count, the 429 hold per URL, injected faults, then the message."""

    def __init__(self, store: Store, respond_with: Respond) -> None:
        self.store = store
        self.respond_with = respond_with

    def post(self, rid: str, raw: bytes) -> Reply:
        """Answer one POST (status, body, headers) and log it."""
        status, body, headers, stored, fault = self._serve(rid, raw)
        with self.store.lock:
            call = ResponseCall(rid, time.time(), status, stored, fault, _text(raw))
            self.store.responses.append(call.as_dict())
        return status, body, headers

    def _serve(self, rid: str, raw: bytes) -> tuple[int, dict[str, Any], dict[str, str], bool, str | None]:
        entry, error = self.store.use_response_url(rid, spend=False)
        if entry is None:
            return (*self._error(404, str(error)), False, None)
        spends = self.store.settings.response_url_faults_spend_use
        early = self.store.faults.held(f"{METHOD} {rid}")
        if early is not None:
            self._spend(rid, spends)
            return (*early, False, "held")
        fault = self.store.faults.take(METHOD, wildcard=False)
        if fault is not None and fault.status == 429:
            self.store.faults.hold(f"{METHOD} {rid}", fault.retry_after)
        if fault is not None and not fault.after_store:
            self._spend(rid, spends)
            return (*_page(fault), False, _name(fault))
        entry, error = self.store.use_response_url(rid)  # a message Slack takes spends a use
        if entry is None:
            return (*self._error(404, str(error)), False, None)
        status, body, headers = self._store(entry, raw)
        if fault is not None:
            return (*_page(fault), status == 200, _name(fault))
        return status, body, headers, status == 200, None

    def _spend(self, rid: str, spends: bool) -> None:
        if spends:
            self.store.use_response_url(rid)

    def _store(self, entry: ResponseUrl, raw: bytes) -> Reply:
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return self._error(400, "invalid_payload")
        if not isinstance(data, dict):
            return self._error(400, "invalid_payload")
        try:
            self.respond_with(entry, data)
        except BlockError as exc:
            return 400, {"ok": False, "error": exc.code, "errors": exc.messages}, {}
        return 200, {"ok": True}, {}

    def _error(self, status: int, code: str) -> Reply:
        """An error as the switch says Slack words it: JSON with ok=false, or the bare code as text."""
        if self.store.settings.response_url_errors == "text":
            return status, {"_text": code}, {}
        return status, {"ok": False, "error": code}, {}


def _text(raw: bytes) -> str:
    """The text of a POSTed message, for the call log ("" when the body is not a JSON object)."""
    try:
        data = json.loads(raw or b"{}")
    except ValueError:
        return ""
    return str(data.get("text") or "")[:200] if isinstance(data, dict) else ""


def _page(fault: Fault) -> Reply:
    """A 429 with Retry-After, or the edge's HTML page for a 5xx (never a Web API error body)."""
    if fault.status == 429:
        return 429, {"_text": "rate_limited"}, {"Retry-After": str(fault.retry_after)}
    return fault.status, {"_html": f"<html><body>{fault.status} Server Error</body></html>"}, {}


def _name(fault: Fault) -> str:
    """How the call log names a fault."""
    if fault.status == 429:
        return "429"
    return f"{fault.status} after storing" if fault.after_store else str(fault.status)
