"""`deploybot demo`: everything local on loopback (ECS sandbox, Slack stand-in page, the bot)."""

from __future__ import annotations


def run_demo(port: int, speed: float) -> int:
    """Run the local demo until Ctrl-C; for now the ECS sandbox alone (the page and bot join it later)."""
    from bot.sandbox.ecs.server import serve_forever

    print("DeployBot demo: the ECS sandbox only, for now (the Slack page and the bot are not wired in yet).")
    print("Point boto3 at it with AWS_ENDPOINT_URL_ECS, or stop it with Ctrl-C.")
    serve_forever("127.0.0.1", port, speed)
    return 0
