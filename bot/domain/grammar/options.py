"""Tokens and option values of the `/deploy` grammar: quoting, percentages, stages, images (pure)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from bot.domain.durations import DurationError, format_duration, parse_duration
from bot.domain.enums import PAUSE_FORBIDDEN_STAGES, PAUSE_STAGES, HookStage
from bot.domain.text import clip, escape

# Phones replace straight quotes with typographic ones, and people close a quote with either form.
DOUBLE_QUOTES = '"“”'
SINGLE_QUOTES = "'‘’"
QUOTES = DOUBLE_QUOTES + SINGLE_QUOTES
MAX_SHOWN = 40  # echoed user text is cut so an error stays one readable line

STAGE_ALIASES: Mapping[str, HookStage] = {
    "test": HookStage.POST_TEST_TRAFFIC_SHIFT,
    "prod": HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT,
}
DEPLOY_KEYS = ("image", "taskdef", "bake", "canary-bake", "step-bake", "approve", "reason")
DURATION_KEYS = ("bake", "canary-bake", "step-bake")

_PERCENT = re.compile(r"^([0-9]{1,6}(?:\.[0-9]{1,6})?)%$")
_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"sha256:[a-f0-9]{64}"
_REGISTRY = rf"{_LABEL}(?:\.{_LABEL})*(?::[0-9]{{1,5}})?"
_IMAGE = re.compile(rf"^(?:{_REGISTRY}/)?{_NAME}(?:/{_NAME})*(?::{_TAG})?(?:@{_DIGEST})?$")
_TAG_ONLY = re.compile(rf"^(?::{_TAG}(?:@{_DIGEST})?|@{_DIGEST})$")
_TASKDEF = re.compile(r"^([A-Za-z0-9_-]{1,255}):([1-9][0-9]{0,8})$")
_FAMILY = re.compile(r"^[A-Za-z0-9_-]{1,255}")


class GrammarError(ValueError):
    """Malformed `/deploy` text; `.message` names the problem and, when `example` is set, a corrected command.

    `parse` only lets an example through that it parses itself (`suggesting`), so every `Try:` can be typed as is.
    """

    def __init__(self, problem: str, example: str | None) -> None:
        # Slack shows the message as one line of mrkdwn: no line breaks, and no backtick that would end the code.
        self.problem = " ".join(problem.split())
        self.example = " ".join(example.replace("`", "'").split()) if example is not None else None
        self.message = f"{self.problem} Try: `/deploy {self.example}`" if self.example else self.problem
        super().__init__(self.message)

    def suggesting(self, example: str | None) -> GrammarError:
        """The same problem with another suggestion (None: no `Try:`)."""
        return GrammarError(self.problem, example)


class OptionProblem(Exception):
    """A bad option value; `fix` is the corrected token, or None to drop the token."""

    def __init__(self, problem: str, fix: str | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class Token:
    """One word of the command as typed; `key` is set (lower-case, `-` form) for `key=value` words."""

    raw: str
    key: str | None
    value: str


@dataclass(frozen=True)
class Line:
    """The words of one command, kept to build corrected examples for error messages."""

    words: tuple[str, ...]

    def example(self, changes: Mapping[int, str | None] | None = None, append: str = "") -> str:
        """The command with word i replaced by changes[i] (dropped when None), plus `append`."""
        changes = changes or {}
        words = [changes.get(i, w) for i, w in enumerate(self.words)]
        return " ".join(w for w in [*words, append] if w)

    def error(self, problem: str, changes: Mapping[int, str | None] | None = None, append: str = "") -> GrammarError:
        """A GrammarError whose example is this line with the given corrections."""
        return GrammarError(problem, self.example(changes, append))


def show(text: str) -> str:
    """User text as inline code, shortened and made safe for one line of mrkdwn (`<!channel>` stays inert)."""
    flat = " ".join(text.replace("`", "'").split())
    if len(flat) > MAX_SHOWN:
        flat = flat[: MAX_SHOWN - 1] + "…"
    return f"`{clip(escape(flat), MAX_SHOWN + 40)}`"


def split_first(text: str) -> tuple[str, str]:
    """The first word of `text` and the rest (both stripped)."""
    parts = text.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


def tokenize(text: str) -> list[Token]:
    """Split deploy text into words, keeping a quoted `key="…"` value together."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != "=":
            i += 1
        if i < n and text[i] == "=" and i > start:
            key = text[start:i].lower().replace("_", "-")
            value, i = _read_value(text, i + 1)
            tokens.append(Token(text[start:i], key, value))
        else:
            i = _word_end(text, i)
            tokens.append(Token(text[start:i], None, text[start:i]))
    return tokens


def _word_end(text: str, i: int) -> int:
    while i < len(text) and not text[i].isspace():
        i += 1
    return i


def _read_value(text: str, i: int) -> tuple[str, int]:
    if i >= len(text) or text[i] not in QUOTES:
        end = _word_end(text, i)
        return text[i:end], end
    family = DOUBLE_QUOTES if text[i] in DOUBLE_QUOTES else SINGLE_QUOTES
    end = next((j for j in range(i + 1, len(text)) if text[j] in family), -1)
    if end < 0:
        raise GrammarError("The quoted value has no closing quote.", text.strip() + family[0])
    if end + 1 < len(text) and not text[end + 1].isspace():
        raise _inner_quote(text, i, end, family)
    return text[i + 1 : end], end + 1


def _inner_quote(text: str, start: int, end: int, family: str) -> GrammarError:
    # Most often a quote inside the reason (`reason="said "no" twice"`): suggest the other kind of quote around
    # everything up to the last quote that ends a word.
    n = len(text)
    closers = [j for j in range(end + 1, n) if text[j] in family and (j + 1 == n or text[j + 1].isspace())]
    stop = closers[-1] if closers else _word_end(text, end)
    other = SINGLE_QUOTES if family == DOUBLE_QUOTES else DOUBLE_QUOTES
    inner = "".join(c for c in text[start + 1 : stop] if c not in other)
    fixed = f"{text[:start]}{other[0]}{inner}{other[0]}{text[stop + 1 if closers else stop :]}"
    return GrammarError("A quote inside the quoted value ends it early; quote it with the other kind.", fixed.strip())


def read_percent(raw: str) -> Decimal | None:
    """The number in `12.5%`, or None when `raw` is not written as a percentage."""
    match = _PERCENT.match(raw)
    return Decimal(match.group(1)) if match else None


def format_percent(value: float) -> str:
    """`12.5%`, `10%`: the shortest text `read_percent` reads back as `value`."""
    return f"{value:g}%"


def read_duration(key: str, value: str, default: timedelta) -> timedelta:
    """Parse the value of a duration option, at most 24h."""
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise OptionProblem(f"`{key}=`: {exc}.", f"{key}={format_duration(default)}") from exc


def read_stages(value: str) -> tuple[HookStage, ...]:
    """Approval stages from `test,prod`, full stage names, or `none` (no approval)."""
    names = [part.strip() for part in value.split(",")]
    if [n.lower() for n in names] == ["none"]:
        return ()
    stages: set[HookStage] = set()
    for name in names:
        stages.add(_stage(name, value))
    # Canonical stage order makes `approve=prod,test` and `approve=test,prod` the same command.
    return tuple(s for s in HookStage if s in stages)


def _stage(name: str, whole: str) -> HookStage:
    key = name.lower().replace("-", "_")
    if not key:
        raise OptionProblem(f"`approve={whole}` has an empty stage name.", f"approve={whole.strip(',')}")
    if key == "none":
        raise OptionProblem("`approve=none` cannot be combined with stages.", "approve=none")
    stage = STAGE_ALIASES.get(key) or HookStage.__members__.get(key.upper())
    if stage is None:
        choices = [*STAGE_ALIASES, *(s.value.lower() for s in PAUSE_STAGES)]
        close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}`?" if close else " Use `test`, `prod`, a stage name or `none`."
        raise OptionProblem(f"Unknown approval stage {show(name)}.{hint}", f"approve={close[0] if close else 'prod'}")
    if stage in PAUSE_FORBIDDEN_STAGES:
        raise OptionProblem(
            f"ECS cannot pause at {stage.value} (it runs again during a rollback); "
            "use `test` (POST_TEST_TRAFFIC_SHIFT) or `prod` (PRE_PRODUCTION_TRAFFIC_SHIFT).",
            "approve=test" if stage is HookStage.TEST_TRAFFIC_SHIFT else "approve=prod",
        )
    return stage


def format_stages(stages: Sequence[HookStage]) -> str:
    """`none`, or stage names joined by commas, short aliases where they exist."""
    short = {stage: alias for alias, stage in STAGE_ALIASES.items()}
    return ",".join(short.get(s, s.value.lower()) for s in stages) or "none"


def read_image(value: str) -> str:
    """A pinned image reference (`repo/name:tag`, `…@sha256:…`) or a tag/digest for the current repository."""
    if _TAG_ONLY.match(value):
        return value
    if not _IMAGE.match(value):
        raise OptionProblem(
            f"{show(value)} is not an image reference; write `repo/name:tag`, `repo/name@sha256:…` or `:tag`.",
            "image=:<tag>",
        )
    last = value.split("@", 1)[0].rsplit("/", 1)[-1]
    if ":" not in last and "@" not in value:
        # An untagged image means whatever `latest` is at pull time: not a reproducible deployment.
        raise OptionProblem(
            f"Image {show(value)} has no tag or digest; pin the version, like {show(value + ':<tag>')}.",
            f"image={value}:<tag>",  # a placeholder: `parse` drops a suggestion it cannot parse
        )
    return value


def read_taskdef(value: str, service: str) -> str:
    """A task definition `family:revision`."""
    if _TASKDEF.match(value):
        return value
    family = _FAMILY.match(value)
    fix = f"taskdef={family.group(0) if family else service}:<revision>"
    raise OptionProblem(f"`taskdef=` wants `family:revision` (like `{service}:42`), not {show(value)}.", fix)


def normal_reason(text: str | None) -> str | None:
    """A reason as every command holds it: on one line, runs of whitespace as one space, trimmed; empty is none."""
    reason = " ".join((text or "").split())
    return reason or None


class NormalReason:
    """A command's reason held as the grammar reads it, however the command was made (parse, a modal, a test), so
    that parse(format_command(c)) == c for every command: `Rollback("ui", " bad")` is `Rollback("ui", "bad")`."""

    reason: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", normal_reason(self.reason))


def read_reason(value: str) -> str:
    """A deploy reason: one line, not empty, never mixing quote families (so it can always be quoted)."""
    reason = normal_reason(value) or ""
    if not reason:
        raise OptionProblem("`reason=` is empty; say why, or leave it out.", None)
    if any(c in DOUBLE_QUOTES for c in reason) and any(c in SINGLE_QUOTES for c in reason):
        cleaned = "".join(c for c in reason if c not in QUOTES)
        raise OptionProblem("A reason cannot contain both double and single quotes.", f'reason="{cleaned}"')
    return reason


def quote_reason(reason: str) -> str:
    """The reason in quotes that `tokenize` reads back unchanged."""
    return f"'{reason}'" if any(c in DOUBLE_QUOTES for c in reason) else f'"{reason}"'


def read_free_reason(rest: str) -> str | None:
    """The rest-of-line reason of rollback/lock: optional `reason=` prefix and one pair of quotes removed."""
    text = normal_reason(rest) or ""
    if text.lower().startswith("reason="):
        text = text[len("reason=") :]
    if len(text) >= 2 and _same_family(text[0], text[-1]):
        text = text[1:-1]
    return normal_reason(text)


def _same_family(first: str, last: str) -> bool:
    return any(first in family and last in family for family in (DOUBLE_QUOTES, SINGLE_QUOTES))
