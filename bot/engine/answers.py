"""What a use case returns to the Slack layer: who acted, and what to tell them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bot.domain.enums import ActorSource, AnswerKind
from bot.domain.readmodels import DeploymentView, StatusReport


@dataclass(frozen=True)
class Actor:
    """The person behind a request and where it came from."""

    user_id: str
    channel_id: str
    team_id: str | None = None
    source: ActorSource = ActorSource.COMMAND


@dataclass(frozen=True)
class Answer:
    """A use case's reply: one mrkdwn line, whether it is for everyone, and any deployments to render."""

    text: str
    ok: bool = True
    public: bool = False  # say it in the channel (incident rollbacks), not just to the person
    deployment_id: int | None = None
    rule: str | None = None  # the policy rule behind a refusal
    kind: AnswerKind = AnswerKind.TEXT
    views: tuple[DeploymentView, ...] = field(default=())
    report: StatusReport | None = None  # AnswerKind.STATUS


def refused(text: str, rule: str | None = None, deployment_id: int | None = None) -> Answer:
    """A refusal: nothing changed."""
    return Answer(text=text, ok=False, rule=rule, deployment_id=deployment_id)


def slack_time(value: datetime) -> str:
    """A Slack date token: every reader sees it in their own time zone (UTC fallback)."""
    return f"<!date^{int(value.timestamp())}^{{date_short_pretty}} {{time}}|{value:%Y-%m-%d %H:%M} UTC>"


def mention(principal: str) -> str:
    """`<@U…>` for a user, `<!subteam^S…>` for a user group."""
    return f"<!subteam^{principal}>" if principal.startswith("S") else f"<@{principal}>"
