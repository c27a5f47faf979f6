"""A bot of its own process, for its resident memory alone: `python -m bench.child '<json>'`, commands on stdin.

The benchmark's own process also holds the ECS sandbox, the Slack stand-in and every deployment they track, so its
size says little about the bot's. This process is what `deploybot run` builds (settings, context, HTTP server;
jobs off so that the benchmark decides when a pass runs), pointed at the benchmark's sandbox, stand-in and
database. Commands, one a line: `rss` (answers the resident MB), `pass` (one reconcile pass, then the MB), `quit`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import SecretStr

from bench.scale import rss_mb
from bench.stack import REGION, Stack, bench_catalog, isolate_aws
from bot.config import Settings
from bot.runtime import build_context, start_http
from sandbox.slack.server import DEFAULT_BOT_TOKEN, DEFAULT_SIGNING_SECRET


def main(argv: list[str]) -> int:
    """Serve, answer the benchmark's commands, stop."""
    config = json.loads(argv[0])
    logging.basicConfig(level=logging.ERROR)
    isolate_aws()
    settings = Settings(
        slack_bot_token=SecretStr(DEFAULT_BOT_TOKEN),
        slack_signing_secret=SecretStr(DEFAULT_SIGNING_SECRET),
        slack_api_url=config["slack"],
        database_url=SecretStr(config["database"]),
        poll_seconds=5.0,
        aws_region=REGION,
        aws_endpoint_url_ecs=config["ecs"],
    )
    catalog = bench_catalog(int(config["services"]), bool(config.get("approvals")))
    ctx = build_context(settings, catalog, ecs_endpoint=config["ecs"])
    bot = start_http(ctx, port=0, run_jobs=False)
    print(bot.port, flush=True)  # the first line: where Slack's requests go
    try:
        for line in sys.stdin:
            command = line.strip()
            if command == "pass":
                ctx.usecases.reconciler.reconcile_once()
            elif command == "quit":
                break
            print(f"{rss_mb():.1f}", flush=True)
    finally:
        bot.stop()
    sys.stdout.flush()
    os._exit(0)  # nothing left to clean up: skip the interpreter's teardown of every module (~1-2 s)


@dataclass
class Child:
    process: subprocess.Popen[str]
    _port: int | None = None

    @property
    def port(self) -> int:
        """Where Slack's requests go: the child's first line (waits for the child to be up)."""
        if self._port is None:
            assert self.process.stdout is not None
            self._port = int(self.process.stdout.readline())
        return self._port

    def ask(self, command: str) -> float:
        """Send one command; the resident MB it answers."""
        assert self.port and self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())


@contextmanager
def child_bot(stack: Stack, database_url: str, services: int, approvals: bool = False) -> Iterator[Child]:
    """The bot in a process of its own, on the stack's sandbox, stand-in and database. It is still starting
    (importing, for seconds) when this yields: prepare the phase meanwhile; `port` and `ask` wait for it."""
    config = {
        "slack": stack.slack.api_url,
        "ecs": stack.ecs.url,
        "database": database_url,
        "services": services,
        "approvals": approvals,
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, arguments built here
        [sys.executable, "-m", "bench.child", json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield Child(process)
    finally:
        if process.stdin is not None:
            process.stdin.close()
        process.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
