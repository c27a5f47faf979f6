"""Online checks of the Slack side for `deploybot check`: the bot token, its scopes, and the app-level token."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config import Settings
from bot.domain.problems import Problem
from bot.slack.clients import web_client
from bot.slack.errors import header
from bot.slack.scopes import APP_TOKEN_SCOPE, REQUIRED_BOT_SCOPES


def check_slack(settings: Settings, problems: list[Problem], notes: list[str]) -> None:
    """auth.test with the bot token; its granted scopes (x-oauth-scopes) against the needed ones; the xapp- token."""
    if settings.slack_bot_token is None:
        notes.append("Slack: not checked (SLACK_BOT_TOKEN is not set)")
        return
    client = web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        auth = client.auth_test()
    except SlackApiError as exc:
        problems.append(Problem("SLACK_BOT_TOKEN", 0, f"Slack auth.test failed: {exc.response.get('error')}"))
        return
    except (SlackClientError, OSError) as exc:
        problems.append(Problem("SLACK_API_URL", 0, f"cannot reach Slack at {settings.slack_api_url}: {exc}"))
        return
    notes.append(f"Slack: authenticated as {auth.get('user')} in {auth.get('team')}")
    _check_scopes(header(auth.headers or {}, "x-oauth-scopes"), problems, notes)
    if settings.slack_app_token is not None:
        _check_app_token(settings, problems, notes)


def _check_scopes(granted_header: str | None, problems: list[Problem], notes: list[str]) -> None:
    if granted_header is None:
        notes.append("Slack: the token's scopes were not reported (no x-oauth-scopes header)")
        return
    granted = {s.strip() for s in granted_header.split(",") if s.strip()}
    missing, extra = sorted(REQUIRED_BOT_SCOPES - granted), sorted(granted - REQUIRED_BOT_SCOPES)
    notes.append(f"Slack: scopes granted: {', '.join(sorted(granted)) or 'none'}")
    notes.append(f"Slack: scopes needed: {', '.join(sorted(REQUIRED_BOT_SCOPES))}")
    if missing:
        problems.append(
            Problem(
                "SLACK_BOT_TOKEN",
                0,
                f"the bot token lacks {', '.join(missing)}: add them (app_manifest.yml lists them), reinstall the app",
            )
        )
    if extra:
        notes.append(f"Slack: granted but not needed (harmless): {', '.join(extra)}")


def _check_app_token(settings: Settings, problems: list[Problem], notes: list[str]) -> None:
    """apps.connections.open with the xapp- token: the only way to know it opens a Socket Mode connection."""
    assert settings.slack_app_token is not None
    client = WebClient(base_url=settings.slack_api_url, timeout=10, retry_handlers=[])
    try:
        client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackApiError as exc:
        error = exc.response.get("error")
        problems.append(
            Problem(
                "SLACK_APP_TOKEN",
                0,
                f"apps.connections.open refused the app-level token: {error} (it needs the {APP_TOKEN_SCOPE} scope)",
            )
        )
        return
    except (SlackClientError, OSError) as exc:
        problems.append(Problem("SLACK_API_URL", 0, f"cannot reach Slack at {settings.slack_api_url}: {exc}"))
        return
    notes.append("Slack: the app-level token opens a Socket Mode connection (apps.connections.open)")
