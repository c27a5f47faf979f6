"""The `deploybot` console script: run, demo, migrate, check, sandbox ecs|slack."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot import checks


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deploybot", description="Run Amazon ECS deployments from Slack.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", help="run the bot against Slack and AWS (Socket Mode if SLACK_APP_TOKEN is set)")
    demo = sub.add_parser("demo", help="run everything locally: ECS sandbox, Slack stand-in page and the bot")
    demo.add_argument("--port", type=int, default=8080, help="port of the demo page (default 8080)")
    demo.add_argument(
        "--speed", type=float, default=1.0, help="sandbox seconds per real second (1: ECS and the bot share one pace)"
    )
    migrate = sub.add_parser("migrate", help="bring the database schema up to date")
    migrate.add_argument("revision", nargs="?", default="head", help="target revision (default head)")
    check = sub.add_parser("check", help="validate settings and catalog, and reach Slack and ECS if configured")
    check.add_argument("--catalog", help="catalog file (default: DEPLOYBOT_CATALOG or services.yml)")
    check.add_argument("--offline", action="store_true", help="do not call Slack or ECS")
    sandbox = sub.add_parser("sandbox", help="run a local stand-in for an outside system")
    kinds = sandbox.add_subparsers(dest="kind", required=True, metavar="KIND")
    ecs = kinds.add_parser("ecs", help="the local ECS sandbox (AWS JSON 1.1 on loopback)")
    ecs.add_argument("--port", type=int, default=4566)
    ecs.add_argument("--speed", type=float, default=1.0, help="sandbox seconds per real second")
    ecs.add_argument(
        "--switch",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="behaviour AWS leaves undocumented, e.g. pause_hook_details=drop|echo|reject (repeatable)",
    )
    slack = kinds.add_parser("slack", help="the local Slack Web API stand-in and its page")
    slack.add_argument("--port", type=int, default=4567)
    slack.add_argument("--bot-url", default="http://127.0.0.1:3000/slack/events")
    slack.add_argument("--signing-secret", default="sandbox-signing-secret")
    slack.add_argument("--bot-token", default="xoxb-sandbox-token")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except KeyboardInterrupt:
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check":
        return checks.run_check(catalog_path=args.catalog, offline=args.offline)
    if args.command == "migrate":
        return checks.run_migrate(args.revision)
    if args.command == "run":
        from bot.run import run_bot

        return run_bot()
    if args.command == "demo":
        from bot.demo import run_demo

        return run_demo(port=args.port, speed=args.speed)
    if args.kind == "ecs":
        from sandbox.ecs.server import serve_forever as serve_ecs
        from sandbox.ecs.switches import SwitchError, parse_flag

        try:
            switches = dict(parse_flag(flag) for flag in args.switch)
        except SwitchError as exc:
            print(f"deploybot sandbox ecs: {exc}", file=sys.stderr)
            return 2
        serve_ecs("127.0.0.1", args.port, args.speed, switches)
        return 0
    from sandbox.slack.server import serve_forever as serve_slack

    serve_slack("127.0.0.1", args.port, args.bot_url, args.signing_secret, args.bot_token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
