"""The bot's runtime: Slack listeners, HTTP server or Socket Mode, and the scheduled jobs."""

from __future__ import annotations

import sys

from bot.catalog import Catalog
from bot.config import Settings


def serve(settings: Settings, catalog: Catalog) -> int:
    """Serve until stopped; the Slack runtime is not part of this build yet, so say so plainly."""
    del settings, catalog
    print("deploybot run: configuration is valid, but the Slack runtime is not in this build yet.", file=sys.stderr)
    return 2
