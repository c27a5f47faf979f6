"""Text a person typed, made safe for Slack's mrkdwn: escaping and safe truncation (pure)."""

from __future__ import annotations

import re

_PARTIAL_TAIL = re.compile(r"(&[a-z]{0,4}|<[^>]*)$")


def escape(text: str) -> str:
    """Slack-escape text a person typed, so `<!channel>`, `<@U…>` or `<http://…|x>` stay inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending in `…`, never inside an `&amp;` entity or a `<…>` token."""
    if len(text) <= limit:
        return text
    cut = _PARTIAL_TAIL.sub("", text[: max(0, limit - 1)])
    return cut + "…"
