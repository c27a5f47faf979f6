"""Answers to commands: one-line refusals and errors, status, history, help (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import Block, HeaderBlock

from bot.domain.enums import DeploymentStatus, Strategy
from bot.domain.grammar.parser import HELP_TEXT
from bot.domain.readmodels import DeploymentView, LockView, StatusReport
from bot.domain.text import clip, escape
from bot.slack.blocks.base import (
    SECTION_CHARS,
    Message,
    as_utc,
    context,
    finish,
    plain,
    principal,
    section,
    slack_date,
)
from bot.slack.blocks.parts import (
    STATUS_EMOJI,
    STATUS_WORDS,
    change_line,
    duration_of,
    requested_line,
    requester,
    short_image,
    short_taskdef,
    strategy_text,
    traffic_bar,
)
from bot.slack.blocks.root import status_line

LIST_BUDGET = 9_000  # characters of list lines in one message, leaving room for the JSON around them
ENTRY_CHARS = 600
REASON_PREVIEW = 140


def ephemeral(text: str) -> Message:
    """A one-line answer only the asker sees (refusals, errors); `text` is mrkdwn the caller already escaped."""
    line = " ".join(text.split()) or "Something went wrong."
    return finish(line, [section(line)])


def packed(lines: Sequence[str], budget: int = LIST_BUDGET) -> tuple[list[Block], int]:
    """Sections holding as many `lines` as fit in `budget` characters; and how many did not fit."""
    blocks: list[Block] = []
    chunk: list[str] = []
    used = 0
    for count, raw in enumerate(lines):
        line = clip(raw, ENTRY_CHARS)
        if used + len(line) > budget:
            return _flush(blocks, chunk), len(lines) - count
        if chunk and sum(len(x) + 1 for x in chunk) + len(line) > SECTION_CHARS:
            blocks, chunk = _flush(blocks, chunk), []
        chunk.append(line)
        used += len(line) + 1
    return _flush(blocks, chunk), 0


def _flush(blocks: list[Block], chunk: list[str]) -> list[Block]:
    return [*blocks, section("\n".join(chunk))] if chunk else blocks


def with_more(blocks: list[Block], more: int, hint: str = "") -> list[Block]:
    """`blocks` and, when some entries were left out, a "…and N more" context."""
    return [*blocks, context(f"…and {more} more{hint}")] if more else blocks


def active_line(view: DeploymentView, now: datetime) -> str:
    """One active deployment: status, who asked and when (the bot's clock), traffic."""
    head = f"*{escape(view.service_key)}* · {strategy_text(view)} · #{view.id}"
    bar = "" if view.strategy is Strategy.ROLLING or view.headless else f"\n{traffic_bar(view.production_weight)}"
    return f"{head}\n{status_line(view)}\n{requested_line(view, now)}{bar}"


def lock_line(lock: LockView) -> str:
    """`🔒 *catalog* locked by <@U…> since <date>: reason`."""
    why = f": {clip(escape(lock.reason), REASON_PREVIEW)}" if lock.reason else ""
    until = f" until {slack_date(lock.until)}" if lock.until is not None else ""
    who = f"{principal(lock.locked_by)} since {slack_date(lock.locked_at)}{until}"
    return f"🔒 *{escape(lock.service_key)}* locked by {who}{why}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


def status_summary(report: StatusReport) -> str:
    """`2 deployments in progress · 1 waiting for approval · 1 service locked` (per service: `catalog: …`)."""
    count = len(report.active)
    parts = [f"{_plural(count, 'deployment')} in progress" if count else "No deployment is in progress"]
    if report.waiting:
        parts.append(f"{len(report.waiting)} waiting for approval")
    if report.locks:
        parts.append("locked" if report.service_key else f"{_plural(len(report.locks), 'service')} locked")
    return (f"{report.service_key}: " if report.service_key else "") + " · ".join(parts)


def status_message(report: StatusReport, now: datetime) -> Message:
    """`/deploy status [service]`: deployments in progress (waiting approvals say so), locks, and per service the last
    deployment when none runs — all from one `StatusReport`, so the two views cannot contradict each other."""
    text = status_summary(report)
    lines = [active_line(v, now) + "\n" for v in report.active]
    lines += [lock_line(lock) for lock in report.locks]
    if report.last is not None:
        lines.append(f"Last deployment: {history_line(report.last, now)}")
    if not lines:
        lines.append("Nothing is running and nothing is locked. 😌")
    body, more = packed(lines)
    emoji = "✋" if report.waiting else "⏳" if report.active else "😌"
    return finish(text, [HeaderBlock(text=plain(f"{emoji} {text}", 150)), *with_more(body, more)])


def history_line(view: DeploymentView, now: datetime) -> str:
    """One past deployment: outcome, when, who, what, duration, reason."""
    took = duration_of(view)
    outcome = STATUS_WORDS[view.status]
    if took:
        outcome += f" {'in' if view.status is DeploymentStatus.SUCCEEDED else 'after'} {took}"
    change = change_line(short_image(view.image_from), short_image(view.image_to)) or change_line(
        short_taskdef(view.taskdef_from), short_taskdef(view.taskdef_to)
    )
    parts = [
        f"{STATUS_EMOJI[view.status]} *#{view.id}*",
        slack_date(view.created_at, "{date_short} {time}"),
        requester(view),
        strategy_text(view),
        change,
        outcome,
    ]
    line = " · ".join(p for p in parts if p)
    if view.reason:
        line += f"\n      _{clip(escape(' '.join(view.reason.split())), REASON_PREVIEW)}_"
    return line


def history_message(views: Sequence[DeploymentView], now: datetime) -> Message:
    """`/deploy history <service>`: newest first; who, what, when, outcome, duration."""
    if not views:
        return finish("No deployments found.", [section("No deployments found.")])
    ordered = sorted(views, key=lambda v: (as_utc(v.created_at), v.id), reverse=True)
    names = sorted({v.service_key for v in ordered})
    subject = names[0] if len(names) == 1 else "services"
    text = f"History of {subject}: last {len(ordered)} deployment{'s' if len(ordered) != 1 else ''}"
    body, more = packed([history_line(v, now) for v in ordered])
    return finish(text, [HeaderBlock(text=plain(f"📜 {text}", 150)), *with_more(body, more, " (ask for fewer)")])


def help_message() -> Message:
    """`/deploy help`."""
    first = HELP_TEXT.split("\n", 1)[0].replace("*", "")
    return finish(f"DeployBot help — {first}", [HeaderBlock(text=plain("🚀 DeployBot", 150)), section(HELP_TEXT)])
