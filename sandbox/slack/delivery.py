"""Sign requests the way Slack does and deliver them to the bot's events URL."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


@dataclass
class Delivery:
    """What the bot answered (or why it could not be reached)."""

    status: int | None
    body: str
    content_type: str
    error: str | None = None  # Slack's wording: dispatch_failed, operation_timeout, http_*_error

    def json(self) -> Any:
        """The body parsed as JSON, or None if it is empty or not JSON."""
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly summary for the control API."""
        return {
            "status": self.status,
            "body": self.body,
            "content_type": self.content_type,
            "json": self.json(),
            "error": self.error,
        }


def form_body(fields: dict[str, str]) -> bytes:
    """A form-encoded body in the given field order."""
    return urlencode(fields).encode()


def payload_body(payload: dict[str, Any]) -> bytes:
    """Interactivity bodies: one form field, `payload`, holding JSON."""
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))}).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Slack's signature headers for this exact raw body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature or ""}


def deliver(url: str | None, secret: str, body: bytes, content_type: str, timeout: float) -> Delivery:
    """POST a signed body to the bot and return its answer."""
    if not url:
        return Delivery(None, "", "", "dispatch_failed")
    headers = {
        "Content-Type": content_type,
        "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
        **sign(secret, body),
    }
    # The URL comes from the stand-in's own configuration (the bot on loopback), never from a request.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback URL from config
            return Delivery(resp.status, resp.read().decode(), resp.headers.get("Content-Type", ""))
    except urllib.error.HTTPError as exc:
        kind = "http_service_error" if exc.code >= 500 else "http_client_error"
        return Delivery(exc.code, exc.read().decode(errors="replace"), exc.headers.get("Content-Type", ""), kind)
    except TimeoutError:
        return Delivery(None, "", "", "operation_timeout")
    except (urllib.error.URLError, ConnectionError) as exc:
        if isinstance(getattr(exc, "reason", None), TimeoutError):
            return Delivery(None, "", "", "operation_timeout")
        return Delivery(None, "", "", "dispatch_failed")
