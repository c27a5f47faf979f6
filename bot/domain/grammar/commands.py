"""The `/deploy` command vocabulary: the typed commands `parse` reads, and their canonical text (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import assert_never

from bot.domain.catalog.schema import STRATEGY_ALIASES
from bot.domain.durations import format_duration
from bot.domain.enums import HookStage, Strategy
from bot.domain.grammar.options import NormalReason, format_percent, format_stages, quote_reason

HISTORY_DEFAULT = 10
# The first alias of each strategy is the word `format_command` writes.
STRATEGY_WORDS = {strategy: word for word, strategy in reversed(list(STRATEGY_ALIASES.items()))}


@dataclass(frozen=True)
class Deploy(NormalReason):
    """Start a deployment; None means "use the catalog's value" (strategy is always resolved)."""

    service: str
    strategy: Strategy
    percent: float | None = None  # canary first step or linear step, in 0.1 % units
    image: str | None = None  # full reference, or `:tag` / `@sha256:…` on the current repository
    taskdef: str | None = None  # `family:revision`
    bake: timedelta | None = None
    canary_bake: timedelta | None = None
    step_bake: timedelta | None = None
    approve: tuple[HookStage, ...] | None = None  # () = explicitly no approval
    reason: str | None = None


@dataclass(frozen=True)
class Status:
    """Show active deployments, of one service or all."""

    service: str | None = None


@dataclass(frozen=True)
class History:
    """Show the last `limit` deployments of a service."""

    service: str
    limit: int = HISTORY_DEFAULT


@dataclass(frozen=True)
class Approve:
    """Approve the service's deployment that awaits approval."""

    service: str


@dataclass(frozen=True)
class Rollback(NormalReason):
    """Roll back the service's current (or last) deployment."""

    service: str
    reason: str | None = None


@dataclass(frozen=True)
class Lock(NormalReason):
    """Freeze deployments of a service."""

    service: str
    reason: str | None = None


@dataclass(frozen=True)
class Unlock:
    """Lift a service's freeze."""

    service: str


@dataclass(frozen=True)
class Help:
    """Show usage."""


@dataclass(frozen=True)
class OpenForm:
    """Empty text: the Slack layer opens the deploy form."""


Command = Deploy | Status | History | Approve | Rollback | Lock | Unlock | Help | OpenForm


def format_command(cmd: Command) -> str:
    """Canonical text for a command (without `/deploy`); `parse` reads it back as the same command."""
    match cmd:
        case Deploy():
            return _format_deploy(cmd)
        case Status(service=service):
            return f"status {service}" if service else "status"
        case History(service=service, limit=limit):
            return f"history {service}" if limit == HISTORY_DEFAULT else f"history {service} {limit}"
        case Approve(service=service) | Unlock(service=service):
            return f"{type(cmd).__name__.lower()} {service}"
        case Rollback(service=service, reason=reason) | Lock(service=service, reason=reason):
            verb = type(cmd).__name__.lower()
            return f'{verb} {service} "{reason}"' if reason else f"{verb} {service}"
        case Help():
            return "help"
        case OpenForm():
            return ""
        case _:
            assert_never(cmd)


def _format_deploy(cmd: Deploy) -> str:
    parts = [cmd.service, STRATEGY_WORDS[cmd.strategy]]
    if cmd.percent is not None:
        parts.append(format_percent(cmd.percent))
    parts += [f"image={cmd.image}"] if cmd.image else []
    parts += [f"taskdef={cmd.taskdef}"] if cmd.taskdef else []
    for key, value in (("bake", cmd.bake), ("canary-bake", cmd.canary_bake), ("step-bake", cmd.step_bake)):
        parts += [f"{key}={format_duration(value)}"] if value is not None else []
    parts += [f"approve={format_stages(cmd.approve)}"] if cmd.approve is not None else []
    parts += [f"reason={quote_reason(cmd.reason)}"] if cmd.reason else []
    return " ".join(parts)
