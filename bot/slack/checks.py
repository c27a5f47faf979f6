"""Online checks of the Slack side for `deploybot check`."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError, SlackClientError

from bot.config import Settings
from bot.domain.problems import Problem
from bot.slack.clients import web_client


def check_slack(settings: Settings, problems: list[Problem], notes: list[str]) -> None:
    """auth.test with the bot token: the token works and names the workspace."""
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
