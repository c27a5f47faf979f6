"""The `/deploy` command language: parse the text after `/deploy` into typed commands, and back (pure)."""

from __future__ import annotations

import difflib
from decimal import Decimal
from typing import Any

from bot.domain.catalog.loader import Catalog
from bot.domain.catalog.schema import STRATEGY_ALIASES, ServiceConfig
from bot.domain.enums import Strategy, Verb
from bot.domain.grammar.commands import (
    HISTORY_DEFAULT,
    STRATEGY_WORDS,
    Approve,
    Command,
    Deploy,
    Help,
    History,
    Lock,
    OpenForm,
    Rollback,
    Status,
    Unlock,
    format_command,
)
from bot.domain.grammar.options import (
    DEPLOY_KEYS,
    DURATION_KEYS,
    GrammarError,
    Line,
    OptionProblem,
    Token,
    format_percent,
    read_duration,
    read_free_reason,
    read_image,
    read_percent,
    read_reason,
    read_stages,
    read_taskdef,
    show,
    split_first,
    tokenize,
)

__all__ = [
    "HELP_TEXT",
    "Approve",
    "Command",
    "Deploy",
    "GrammarError",
    "Help",
    "History",
    "Lock",
    "OpenForm",
    "Rollback",
    "Status",
    "Unlock",
    "format_command",
    "parse",
]

SUGGESTION_ROUNDS = 6  # corrections applied to one suggestion before giving up on it
HISTORY_MAX = 50
VERBS = tuple(verb.value for verb in Verb)
PERCENT_RANGES = {
    Strategy.CANARY: (Decimal("0.1"), Decimal("99.9"), "a canary first step"),
    Strategy.LINEAR: (Decimal("3"), Decimal("99.9"), "a linear step"),
}

HELP_TEXT = """\
*Deploy:* `/deploy <service> [rolling|bluegreen|canary|linear] [<percent>%] [image=<repo/name:tag or :tag>] \
[taskdef=<family:rev>] [bake=<dur>] [canary-bake=<dur>] [step-bake=<dur>] [approve=<stages>|none] [reason="…"]`
• `/deploy catalog canary 10%` — 10 % of production traffic first, the rest after the canary bake
• `/deploy catalog linear 25% step-bake=2m reason="new search index"`
• `/deploy ui bluegreen image=:v2.4.1 approve=test bake=15m`
Unset options come from the service catalog. Canary step 0.1–99.9 %, linear step 3–99.9 %; durations like \
`90s`, `15m`, `2h` (at most 24h); approval stages `test` (POST_TEST_TRAFFIC_SHIFT), `prod` \
(PRE_PRODUCTION_TRAFFIC_SHIFT), any other pause stage by name, or `none`.
*Other commands:* `/deploy status [service]` · `/deploy history <service> [n ≤ 50]` · `/deploy approve <service>` \
· `/deploy rollback <service> [reason…]` (from any channel) · `/deploy lock <service> [reason…]` \
· `/deploy unlock <service>` · `/deploy help` · `/deploy` alone opens a form."""


def parse(text: str, catalog: Catalog) -> Command:
    """Parse the text after `/deploy`; raise GrammarError, with a corrected command that parses when there is one."""
    try:
        return _parse(text, catalog)
    except GrammarError as exc:
        raise exc.suggesting(_runnable(exc.example, catalog)) from None


def _runnable(example: str | None, catalog: Catalog) -> str | None:
    """The suggestion as the parser itself repairs it, until it parses; None if it never does.

    A correction may leave another mistake of the same command (the parser stops at the first one), so each round
    applies the next correction. A placeholder (`:<tag>`, `:<revision>`: what only the person knows) never parses,
    so such a problem gets no `Try:` and its text says what to write instead.
    """
    seen: set[str] = set()
    while example and example.strip() and example not in seen and len(seen) < SUGGESTION_ROUNDS:
        seen.add(example)
        try:
            _parse(example, catalog)
        except GrammarError as exc:
            example = exc.example
            continue
        return example
    return None


def _parse(text: str, catalog: Catalog) -> Command:
    first, rest = split_first(text)
    if first.lower() == "/deploy":  # pasted from one of our own "Try:" hints
        first, rest = split_first(rest)
    verb = first.lower()
    if not verb:
        return OpenForm()
    if verb == "help":
        _no_more(Line(("help",)), rest, "`help` takes no arguments.")
        return Help()
    if verb == "status":
        return _status(rest, catalog)
    if verb == "history":
        return _history(rest, catalog)
    if verb in ("approve", "unlock"):
        service = _required_service(verb, rest, catalog)
        _no_more(Line((verb, service)), split_first(rest)[1], f"`{verb}` takes only a service.")
        return Approve(service) if verb == "approve" else Unlock(service)
    if verb in ("rollback", "lock"):
        service = _required_service(verb, rest, catalog)
        reason = read_free_reason(split_first(rest)[1])
        return Rollback(service, reason) if verb == "rollback" else Lock(service, reason)
    return _deploy(tokenize(f"{first} {rest}"), catalog)


def _no_more(line: Line, rest: str, problem: str) -> None:
    extra = rest.split()
    if extra:
        raise line.error(f"{problem} Remove {show(' '.join(extra))}.")


def _service(line: Line, index: int, catalog: Catalog) -> ServiceConfig:
    raw = line.words[index]
    found = catalog.get(raw)
    if found is not None:
        return found
    close = catalog.closest(raw)
    names = catalog.names()
    if close:
        guesses = " or ".join(f"`{name}`" for name in close)
        raise line.error(f"Unknown service {show(raw)}. Did you mean {guesses}?", {index: close[0]})
    if not names:
        raise GrammarError(f"Unknown service {show(raw)}; the catalog lists no services.", "help")
    known = ", ".join(f"`{name}`" for name in names[:8]) + (", …" if len(names) > 8 else "")
    raise line.error(f"Unknown service {show(raw)}. Known services: {known}.", {index: names[0]})


def _required_service(verb: str, rest: str, catalog: Catalog) -> str:
    word = split_first(rest)[0]
    if not word:
        example = catalog.names()[0] if len(catalog) else "<service>"
        raise GrammarError(f"`{verb}` needs a service.", f"{verb} {example}")
    return _service(Line((verb, *rest.split())), 1, catalog).key


def _status(rest: str, catalog: Catalog) -> Status:
    words = rest.split()
    if not words:
        return Status()
    line = Line(("status", *words))
    service = _service(line, 1, catalog).key
    if len(words) > 1:
        raise line.error(
            f"`status` takes at most one service. Remove {show(' '.join(words[1:]))}.",
            dict.fromkeys(range(2, len(line.words))),
        )
    return Status(service)


def _history(rest: str, catalog: Catalog) -> History:
    service = _required_service("history", rest, catalog)
    words = rest.split()
    line = Line(("history", service, *words[1:]))
    if len(words) > 2:
        raise line.error(
            f"`history` takes a service and a count. Remove {show(' '.join(words[2:]))}.",
            dict.fromkeys(range(3, len(line.words))),
        )
    if len(words) == 1:
        return History(service)
    count = words[1]
    if not (count.isascii() and count.isdigit()):
        raise line.error(f"{show(count)} is not a number of deployments.", {2: str(HISTORY_DEFAULT)})
    limit = int(count)
    if not 1 <= limit <= HISTORY_MAX:
        raise line.error(f"`history` shows 1 to {HISTORY_MAX} deployments, not {limit}.", {2: str(HISTORY_MAX)})
    return History(service, limit)


def _deploy(tokens: list[Token], catalog: Catalog) -> Deploy:
    line = Line(tuple(t.raw for t in tokens))
    service = _service(line, 0, catalog)
    found: dict[str, tuple[int, Any]] = {}
    for index, token in enumerate(tokens[1:], start=1):
        name, value = _option(line, index, token, service)
        if name in found:
            raise line.error(f"{_option_label(name, tokens[index])} is given twice; keep one.", {index: None})
        found[name] = (index, value)
    strategy = found["strategy"][1] if "strategy" in found else service.strategy
    _check_fit(line, service, strategy, found)
    values = {name.replace("-", "_"): value for name, (_, value) in found.items()}
    values.pop("strategy", None)
    return Deploy(service=service.key, strategy=strategy, **values)


def _option_label(name: str, token: Token) -> str:
    if name in ("strategy", "percent"):
        return f"A {name}"
    return f"`{token.key}=`"


def _option(line: Line, index: int, token: Token, service: ServiceConfig) -> tuple[str, Any]:
    if token.key is None:
        return _bare_option(line, index, token.raw)
    if token.key not in DEPLOY_KEYS:
        close = difflib.get_close_matches(token.key, DEPLOY_KEYS, n=1, cutoff=0.6)
        hint = f" Did you mean `{close[0]}=`?" if close else f" Options: {', '.join(k + '=' for k in DEPLOY_KEYS)}."
        fix = f"{close[0]}={token.value}" if close else None
        raise line.error(f"Unknown option `{token.key}=`.{hint}", {index: fix})
    try:
        return token.key, _option_value(token.key, token.value, service)
    except OptionProblem as problem:
        raise line.error(problem.problem, {index: problem.fix}) from None


def _option_value(key: str, value: str, service: ServiceConfig) -> Any:
    if not value and key != "reason":
        raise OptionProblem(f"`{key}=` has no value.", None)
    if key in DURATION_KEYS:
        default = {"bake": service.bake, "canary-bake": service.canary_bake, "step-bake": service.step_bake}[key]
        return read_duration(key, value, default)
    if key == "approve":
        return read_stages(value)
    if key == "image":
        return read_image(value)
    if key == "taskdef":
        return read_taskdef(value, service.key)
    return read_reason(value)


def _bare_option(line: Line, index: int, raw: str) -> tuple[str, Any]:
    word = raw.lower()
    if word in STRATEGY_ALIASES:
        return "strategy", STRATEGY_ALIASES[word]
    percent = read_percent(raw)
    if percent is not None:
        return "percent", percent
    if raw == "%":
        raise line.error("A `%` needs its number right before it, like `10%`.", {index: None})
    if raw.endswith("%") or raw.replace(".", "", 1).isdigit():
        number = raw.rstrip("%")
        fix = f"{number}%" if number.replace(".", "", 1).isdigit() else "10%"
        spaced = index + 1 < len(line.words) and line.words[index + 1] == "%"  # `10 %`: one percentage
        changes: dict[int, str | None] = {index: fix, index + 1: None} if spaced else {index: fix}
        typed = show(" ".join(line.words[index : index + 1 + spaced]))
        raise line.error(f"{typed} is not a percentage; write it like `10%` or `2.5%`.", changes)
    close = difflib.get_close_matches(word, list(STRATEGY_ALIASES), n=1, cutoff=0.6)
    if close:
        raise line.error(f"Unknown option {show(raw)}. Did you mean `{close[0]}`?", {index: close[0]})
    raise line.error(f"Unknown option {show(raw)}; see `/deploy help`.", {index: None})


def _check_fit(line: Line, service: ServiceConfig, strategy: Strategy, found: dict[str, tuple[int, Any]]) -> None:
    if "image" in found and "taskdef" in found:
        raise line.error("`image=` and `taskdef=` both say what to run; give one.", {found["taskdef"][0]: None})
    chosen = (
        f"`{STRATEGY_WORDS[strategy]}`"
        if "strategy" in found
        else f"`{service.key}` deploys `{STRATEGY_WORDS[strategy]}` by default, and"
    )
    if "percent" in found:
        found["percent"] = (found["percent"][0], _check_percent(line, service, strategy, found, chosen))
    for key, needs in (("canary-bake", Strategy.CANARY), ("step-bake", Strategy.LINEAR)):
        if key in found and strategy is not needs:
            raise line.error(
                f"`{key}=` applies to {STRATEGY_WORDS[needs]} deployments; {chosen} has none.", {found[key][0]: None}
            )
    if "bake" in found and strategy is Strategy.ROLLING:
        raise line.error(
            f"`bake=` does not apply to rolling deployments; {chosen} has no bake time.", {found["bake"][0]: None}
        )


def _check_percent(
    line: Line, service: ServiceConfig, strategy: Strategy, found: dict[str, tuple[int, Any]], chosen: str
) -> float:
    index, value = found["percent"]
    if strategy not in PERCENT_RANGES:
        if "strategy" in found:
            fix: dict[int, str | None] = {found["strategy"][0]: "canary"}
        else:
            fix = {index: f"canary {line.words[index]}"}
        raise line.error(f"A percentage needs canary or linear; {chosen} has no traffic steps.", fix)
    low, high, what = PERCENT_RANGES[strategy]
    default = service.canary_percent if strategy is Strategy.CANARY else service.linear_step_percent
    if not low <= value <= high:
        raise line.error(
            f"{show(line.words[index])} is out of range for {what} ({low}–{high} %).", {index: format_percent(default)}
        )
    if value * 10 % 1:
        rounded = value.quantize(Decimal("0.1"))
        raise line.error(
            f"{show(line.words[index])} has more than one decimal (ECS moves traffic in 0.1 % steps).",
            {index: format_percent(float(rounded))},
        )
    return float(value)
