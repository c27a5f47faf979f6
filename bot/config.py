"""Settings: one object built from the environment variables listed in DESIGN.md."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.domain.enums import LogFormat
from bot.domain.problems import Problem

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///deploybot.sqlite"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class Settings(BaseSettings):
    """Runtime configuration; secrets are SecretStr so they never show in logs or reprs."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    # A database URL may carry a password, so it is a secret too.
    database_url: SecretStr = SecretStr(DEFAULT_DATABASE_URL)
    catalog_path: Path = Field(
        default=Path("services.yml"), validation_alias=AliasChoices("DEPLOYBOT_CATALOG", "catalog_path")
    )
    port: int = Field(default=3000, ge=1, le=65535)
    poll_seconds: float = Field(
        default=5.0, gt=0, le=300, validation_alias=AliasChoices("DEPLOYBOT_POLL_SECONDS", "poll_seconds")
    )
    # How long a claim (a deployment a reconcile pass took, an outbox row being sent) stays its owner's unless
    # renewed: a live pass renews what it holds every third of this (for up to 10 minutes), so this bounds how long
    # a stuck pass keeps its claims.
    lease_seconds: float = Field(
        default=60.0, ge=1, le=600, validation_alias=AliasChoices("DEPLOYBOT_LEASE_SECONDS", "lease_seconds")
    )
    # Threads the outbox sender sends with, each to a channel no other is sending to (Slack paces chat.postMessage
    # per channel; a call takes 100-300 ms, so one thread delivers 3-10 messages a second in all).
    slack_lanes: int = Field(
        default=8, ge=1, le=64, validation_alias=AliasChoices("DEPLOYBOT_SLACK_LANES", "slack_lanes")
    )
    aws_region: str | None = None
    aws_endpoint_url_ecs: str | None = None
    log_level: str = Field(default="INFO", validation_alias=AliasChoices("DEPLOYBOT_LOG_LEVEL", "log_level"))
    # auto: JSON lines, unless stderr is a terminal (then readable lines, as in `deploybot demo`).
    log_format: LogFormat = Field(
        default=LogFormat.AUTO, validation_alias=AliasChoices("DEPLOYBOT_LOG_FORMAT", "log_format")
    )

    @field_validator("slack_api_url")
    @classmethod
    def _trailing_slash(cls, value: str) -> str:
        # slack_sdk joins base_url and the method name without adding a slash.
        return value if value.endswith("/") else value + "/"

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return level

    @property
    def database_url_value(self) -> str:
        """The database URL in clear, for the engine only."""
        return self.database_url.get_secret_value()

    @property
    def socket_mode(self) -> bool:
        """True when an app-level token is set: connect over Socket Mode instead of serving HTTP."""
        return self.slack_app_token is not None

    def slack_problems(self) -> list[Problem]:
        """What stops the bot from talking to Slack with these settings."""
        problems: list[str] = []
        token = _reveal(self.slack_bot_token)
        if not token:
            problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
        elif not token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN must be a bot token starting with xoxb-")
        app_token = _reveal(self.slack_app_token)
        if app_token is not None and not app_token.startswith("xapp-"):
            problems.append("SLACK_APP_TOKEN must be an app-level token starting with xapp- (Socket Mode)")
        if not self.socket_mode and not _reveal(self.slack_signing_secret):
            problems.append("SLACK_SIGNING_SECRET is not set (needed to verify requests in HTTP mode)")
        return [Problem("environment", 0, p) for p in problems]

    def secret_values(self) -> list[str]:
        """Every secret in these settings, in clear (for the log redactor: lines must never carry them)."""
        secrets = [self.slack_bot_token, self.slack_signing_secret, self.slack_app_token]
        values = [_reveal(s) or "" for s in secrets]
        password = urlsplit(self.database_url_value).password
        return [v for v in [*values, password] if v]


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def load_settings() -> tuple[Settings | None, list[Problem]]:
    """Read settings from the environment; return them, or the problems that prevent it."""
    try:
        return Settings(), []
    except ValidationError as exc:
        problems = [Problem("environment", 0, f"{_env_name(err['loc'])}: {err['msg']}") for err in exc.errors()]
        return None, problems


def _env_name(loc: tuple[int | str, ...]) -> str:
    names = {
        "catalog_path": "DEPLOYBOT_CATALOG",
        "poll_seconds": "DEPLOYBOT_POLL_SECONDS",
        "lease_seconds": "DEPLOYBOT_LEASE_SECONDS",
        "slack_lanes": "DEPLOYBOT_SLACK_LANES",
        "log_level": "DEPLOYBOT_LOG_LEVEL",
        "log_format": "DEPLOYBOT_LOG_FORMAT",
    }
    field = str(loc[0]) if loc else "?"
    return names.get(field, field.upper())
