"""`deploybot run`: validate everything first, then serve Slack (HTTP or Socket Mode) and run the jobs."""

from __future__ import annotations

import sys

from bot.checks import preflight, report


def run_bot() -> int:
    """Start the bot for real; a broken catalog or settings stops it before anything starts."""
    result = preflight(need_slack=True)
    if not result.ok or result.settings is None or result.catalog is None:
        print("deploybot run: refusing to start:", file=sys.stderr)
        report(result, out=lambda line: print(line, file=sys.stderr))
        return 1
    from bot.runtime import serve

    return serve(result.settings, result.catalog)
