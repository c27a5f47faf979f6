"""The `/deploy` grammar: valid commands, one test per error message, and property tests."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.domain.catalog.loader import Catalog, load_catalog
from bot.domain.enums import PAUSE_STAGES, HookStage, Strategy
from bot.domain.grammar.options import DOUBLE_QUOTES, SINGLE_QUOTES
from bot.domain.grammar.parser import (
    HELP_TEXT,
    Approve,
    Command,
    Deploy,
    GrammarError,
    Help,
    History,
    Lock,
    OpenForm,
    Rollback,
    Status,
    Unlock,
    format_command,
    parse,
)

CATALOG = load_catalog(Path(__file__).resolve().parents[2] / "services.example.yml")
C, BG, R, L = Strategy.CANARY, Strategy.BLUE_GREEN, Strategy.ROLLING, Strategy.LINEAR
TEST, PROD = HookStage.POST_TEST_TRAFFIC_SHIFT, HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT
DIGEST = "sha256:" + "ab" * 32
ECR = "123456789012.dkr.ecr.us-east-1.amazonaws.com/catalog"

VALID: list[tuple[str, Command]] = [
    ("", OpenForm()),
    ("   \n ", OpenForm()),
    ("help", Help()),
    ("HELP", Help()),
    ("/deploy help", Help()),
    ("status", Status()),
    ("status Catalog", Status("catalog")),
    ("history catalog", History("catalog", 10)),
    ("history catalog 50", History("catalog", 50)),
    ("history ui 1", History("ui", 1)),
    ("approve catalog", Approve("catalog")),
    ("unlock orders", Unlock("orders")),
    ("rollback catalog", Rollback("catalog")),
    ("rollback catalog 500s on checkout", Rollback("catalog", "500s on checkout")),
    ("rollback catalog   errors\n spiking ", Rollback("catalog", "errors spiking")),
    ('rollback catalog "errors spiking"', Rollback("catalog", "errors spiking")),
    ('rollback catalog " errors spiking"', Rollback("catalog", "errors spiking")),
    ('rollback catalog "  "', Rollback("catalog")),
    ('lock catalog reason=" freeze "', Lock("catalog", "freeze")),
    ("rollback catalog “smart quotes”", Rollback("catalog", "smart quotes")),
    ('rollback catalog reason="bad deploy"', Rollback("catalog", "bad deploy")),
    ('rollback catalog said "no" twice', Rollback("catalog", 'said "no" twice')),
    ("lock ui", Lock("ui")),
    ("lock ui 'launch freeze'", Lock("ui", "launch freeze")),
    ("catalog", Deploy("catalog", C)),
    ("/deploy catalog", Deploy("catalog", C)),
    ("Catalog Canary 10%", Deploy("catalog", C, 10.0)),
    ("catalog canary 0.1%", Deploy("catalog", C, 0.1)),
    ("catalog canary 99.9%", Deploy("catalog", C, 99.9)),
    ("catalog 12.5%", Deploy("catalog", C, 12.5)),
    ("catalog 10.50%", Deploy("catalog", C, 10.5)),
    ("catalog linear 3%", Deploy("catalog", L, 3.0)),
    ("catalog 20% linear", Deploy("catalog", L, 20.0)),
    ("ui", Deploy("ui", BG)),
    ("ui blue-green", Deploy("ui", BG)),
    ("ui bg", Deploy("ui", BG)),
    ("ui BlueGreen", Deploy("ui", BG)),
    ("orders", Deploy("orders", R)),
    ("ui rolling", Deploy("ui", R)),
    ("ui image=:v2.4.1", Deploy("ui", BG, image=":v2.4.1")),
    (f"ui image=@{DIGEST}", Deploy("ui", BG, image=f"@{DIGEST}")),
    (f"ui image={ECR}:v2", Deploy("ui", BG, image=f"{ECR}:v2")),
    (f"ui image={ECR}@{DIGEST}", Deploy("ui", BG, image=f"{ECR}@{DIGEST}")),
    ("ui image=localhost:5000/team/ui:1.0", Deploy("ui", BG, image="localhost:5000/team/ui:1.0")),
    ("ui taskdef=ui:42", Deploy("ui", BG, taskdef="ui:42")),
    ("ui bake=90s", Deploy("ui", BG, bake=timedelta(seconds=90))),
    ("ui bake=0m", Deploy("ui", BG, bake=timedelta(0))),
    ("ui bake=24h", Deploy("ui", BG, bake=timedelta(hours=24))),
    ("catalog canary-bake=15m", Deploy("catalog", C, canary_bake=timedelta(minutes=15))),
    ("catalog canary_bake=15m", Deploy("catalog", C, canary_bake=timedelta(minutes=15))),
    ("catalog linear step-bake=2h", Deploy("catalog", L, step_bake=timedelta(hours=2))),
    ("catalog approve=none", Deploy("catalog", C, approve=())),
    ("catalog approve=NONE", Deploy("catalog", C, approve=())),
    ("catalog approve=test", Deploy("catalog", C, approve=(TEST,))),
    ("catalog approve=prod,test", Deploy("catalog", C, approve=(TEST, PROD))),
    ("catalog approve=test,test", Deploy("catalog", C, approve=(TEST,))),
    ("catalog approve=post_test_traffic_shift", Deploy("catalog", C, approve=(TEST,))),
    ("catalog approve=Pre-Scale-Up,prod", Deploy("catalog", C, approve=(HookStage.PRE_SCALE_UP, PROD))),
    ('ui reason="fix checkout"', Deploy("ui", BG, reason="fix checkout")),
    ("ui reason='fix checkout'", Deploy("ui", BG, reason="fix checkout")),
    ("ui reason=“fix checkout”", Deploy("ui", BG, reason="fix checkout")),
    ("ui reason=”fix checkout”", Deploy("ui", BG, reason="fix checkout")),
    ("ui reason=‘fix checkout’", Deploy("ui", BG, reason="fix checkout")),
    ("ui reason=hotfix", Deploy("ui", BG, reason="hotfix")),
    ('ui reason="don\'t panic"', Deploy("ui", BG, reason="don't panic")),
    ("ui REASON=hotfix", Deploy("ui", BG, reason="hotfix")),
    ("ui\u00a0bake=5m", Deploy("ui", BG, bake=timedelta(minutes=5))),
    (
        'catalog linear 25% image=:v3 bake=10m step-bake=2m approve=prod reason="new search index"',
        Deploy(
            "catalog",
            L,
            25.0,
            ":v3",
            None,
            timedelta(minutes=10),
            None,
            timedelta(minutes=2),
            (PROD,),
            "new search index",
        ),
    ),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t or "<empty>" for t, _ in VALID])
def test_valid_commands(text: str, expected: Command) -> None:
    assert parse(text, CATALOG) == expected


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t or "<empty>" for t, _ in VALID])
def test_canonical_text_round_trips(text: str, expected: Command) -> None:
    assert parse(format_command(expected), CATALOG) == expected


@pytest.mark.parametrize(
    ("command", "text"),
    [
        (Deploy("catalog", C, 10.0), "catalog canary 10%"),
        (Deploy("catalog", L, 12.5, step_bake=timedelta(seconds=90)), "catalog linear 12.5% step-bake=90s"),
        (Deploy("ui", BG, approve=()), "ui bluegreen approve=none"),
        (Deploy("ui", BG, approve=(HookStage.PRE_SCALE_UP, TEST)), "ui bluegreen approve=pre_scale_up,test"),
        (Deploy("ui", BG, reason='say "hi"'), "ui bluegreen reason='say \"hi\"'"),
        (History("ui"), "history ui"),
        (History("ui", 5), "history ui 5"),
        (Rollback("ui", "bad"), 'rollback ui "bad"'),
        (Rollback("ui", " bad"), 'rollback ui "bad"'),
        (Rollback("ui", "  bad\n news "), 'rollback ui "bad news"'),
        (Lock("ui", " "), "lock ui"),
        (Deploy("ui", BG, reason=" fix  checkout"), 'ui bluegreen reason="fix checkout"'),
        (OpenForm(), ""),
    ],
)
def test_format_command(command: Command, text: str) -> None:
    assert format_command(command) == text


ERRORS: list[tuple[str, str]] = [
    # tokenizer
    ('ui reason="oops', 'The quoted value has no closing quote. Try: `/deploy ui reason="oops"`'),
    (
        'ui reason="a"b',
        "A quote inside the quoted value ends it early; quote it with the other kind. Try: `/deploy ui reason='a\"b'`",
    ),
    (
        'ui reason="said "no" twice" bake=5m',
        "A quote inside the quoted value ends it early; quote it with the other "
        "kind. Try: `/deploy ui reason='said \"no\" twice' bake=5m`",
    ),
    (
        "ui reason=‘it’s fine’",
        "A quote inside the quoted value ends it early; quote it with the other kind. "
        'Try: `/deploy ui reason="it’s fine"`',
    ),
    # services
    ("catalgo canary 10%", "Unknown service `catalgo`. Did you mean `catalog`? Try: `/deploy catalog canary 10%`"),
    ("rollback catalgo bad", "Unknown service `catalgo`. Did you mean `catalog`? Try: `/deploy rollback catalog bad`"),
    ("xyz", "Unknown service `xyz`. Known services: `ui`, `catalog`, `orders`, `notifications`. Try: `/deploy ui`"),
    ("history", "`history` needs a service. Try: `/deploy history ui`"),
    ("approve", "`approve` needs a service. Try: `/deploy approve ui`"),
    ("rollback", "`rollback` needs a service. Try: `/deploy rollback ui`"),
    # other commands
    ("help me", "`help` takes no arguments. Remove `me`. Try: `/deploy help`"),
    ("status ui catalog", "`status` takes at most one service. Remove `catalog`. Try: `/deploy status ui`"),
    ("history ui 5 6", "`history` takes a service and a count. Remove `6`. Try: `/deploy history ui 5`"),
    ("history ui five", "`five` is not a number of deployments. Try: `/deploy history ui 10`"),
    ("history ui 51", "`history` shows 1 to 50 deployments, not 51. Try: `/deploy history ui 50`"),
    ("history ui 0", "`history` shows 1 to 50 deployments, not 0. Try: `/deploy history ui 50`"),
    ("approve ui now", "`approve` takes only a service. Remove `now`. Try: `/deploy approve ui`"),
    ("unlock ui please", "`unlock` takes only a service. Remove `please`. Try: `/deploy unlock ui`"),
    # deploy: words and keys
    ("ui bake=5m bake=6m", "`bake=` is given twice; keep one. Try: `/deploy ui bake=5m`"),
    ("catalog canary linear", "A strategy is given twice; keep one. Try: `/deploy catalog canary`"),
    ("catalog 10% 20%", "A percent is given twice; keep one. Try: `/deploy catalog 10%`"),
    ("ui bak=5m", "Unknown option `bak=`. Did you mean `bake=`? Try: `/deploy ui bake=5m`"),
    (
        "ui colour=red",
        "Unknown option `colour=`. Options: image=, taskdef=, bake=, canary-bake=, step-bake=, "
        "approve=, reason=. Try: `/deploy ui`",
    ),
    ("ui canery", "Unknown option `canery`. Did you mean `canary`? Try: `/deploy ui canary`"),
    ("ui now", "Unknown option `now`; see `/deploy help`. Try: `/deploy ui`"),
    ("catalog 10", "`10` is not a percentage; write it like `10%` or `2.5%`. Try: `/deploy catalog 10%`"),
    (
        "catalog canary 10 %",
        "`10 %` is not a percentage; write it like `10%` or `2.5%`. Try: `/deploy catalog canary 10%`",
    ),
    ("catalog canary %", "A `%` needs its number right before it, like `10%`. Try: `/deploy catalog canary`"),
    # a suggestion is repaired by the parser until it parses: both mistakes are corrected
    ("catalgo canary 10 %", "Unknown service `catalgo`. Did you mean `catalog`? Try: `/deploy catalog canary 10%`"),
    ("catalog ten%", "`ten%` is not a percentage; write it like `10%` or `2.5%`. Try: `/deploy catalog 10%`"),
    ("ui bake=", "`bake=` has no value. Try: `/deploy ui`"),
    # deploy: values
    ("ui bake=soon", "`bake=`: `soon` is not a duration; write it like 90s, 15m or 2h. Try: `/deploy ui bake=5m`"),
    ("ui bake=25h", "`bake=`: `25h` is longer than 24h. Try: `/deploy ui bake=5m`"),
    ("ui approve=test,", "`approve=test,` has an empty stage name. Try: `/deploy ui approve=test`"),
    ("ui approve=test,none", "`approve=none` cannot be combined with stages. Try: `/deploy ui approve=none`"),
    ("ui approve=tset", "Unknown approval stage `tset`. Did you mean `test`? Try: `/deploy ui approve=test`"),
    (
        "ui approve=later",
        "Unknown approval stage `later`. Use `test`, `prod`, a stage name or `none`. Try: `/deploy ui approve=prod`",
    ),
    (
        "ui approve=test_traffic_shift",
        "ECS cannot pause at TEST_TRAFFIC_SHIFT (it runs again during a rollback); use `test` (POST_TEST_TRAFFIC_SHIFT)"
        " or `prod` (PRE_PRODUCTION_TRAFFIC_SHIFT). Try: `/deploy ui approve=test`",
    ),
    (
        "ui approve=production-traffic-shift",
        "ECS cannot pause at PRODUCTION_TRAFFIC_SHIFT (it runs again during a rollback); use `test` "
        "(POST_TEST_TRAFFIC_SHIFT) or `prod` (PRE_PRODUCTION_TRAFFIC_SHIFT). Try: `/deploy ui approve=prod`",
    ),
    (
        "ui image=Repo/UI:v1",
        "`Repo/UI:v1` is not an image reference; write `repo/name:tag`, `repo/name@sha256:…` or "
        "`:tag`.",  # no Try: only the person knows the tag (a suggestion must parse as it is)
    ),
    (
        "ui image=team/ui",
        "Image `team/ui` has no tag or digest; pin the version, like `team/ui:&lt;tag&gt;`.",
    ),
    (
        "ui taskdef=ui",
        "`taskdef=` wants `family:revision` (like `ui:42`), not `ui`.",
    ),
    ('ui reason=""', "`reason=` is empty; say why, or leave it out. Try: `/deploy ui`"),
    ('ui reason=it\'s"x"', 'A reason cannot contain both double and single quotes. Try: `/deploy ui reason="itsx"`'),
    # deploy: options that do not fit the strategy
    (
        "ui image=:v2 taskdef=ui:3",
        "`image=` and `taskdef=` both say what to run; give one. Try: `/deploy ui image=:v2`",
    ),
    (
        "ui 10%",
        "A percentage needs canary or linear; `ui` deploys `bluegreen` by default, and has no traffic steps. "
        "Try: `/deploy ui canary 10%`",
    ),
    (
        "catalog bluegreen 10%",
        "A percentage needs canary or linear; `bluegreen` has no traffic steps. Try: `/deploy catalog canary 10%`",
    ),
    ("catalog 0%", "`0%` is out of range for a canary first step (0.1–99.9 %). Try: `/deploy catalog 10%`"),
    (
        "catalog canary 100%",
        "`100%` is out of range for a canary first step (0.1–99.9 %). Try: `/deploy catalog canary 10%`",
    ),
    ("catalog linear 1%", "`1%` is out of range for a linear step (3–99.9 %). Try: `/deploy catalog linear 20%`"),
    (
        "catalog 10.25%",
        "`10.25%` has more than one decimal (ECS moves traffic in 0.1 % steps). Try: `/deploy catalog 10.2%`",
    ),
    (
        "ui canary-bake=5m",
        "`canary-bake=` applies to canary deployments; `ui` deploys `bluegreen` by default, and has "
        "none. Try: `/deploy ui`",
    ),
    (
        "catalog linear canary-bake=5m",
        "`canary-bake=` applies to canary deployments; `linear` has none. Try: `/deploy catalog linear`",
    ),
    (
        "catalog step-bake=5m",
        "`step-bake=` applies to linear deployments; `catalog` deploys `canary` by default, and "
        "has none. Try: `/deploy catalog`",
    ),
    (
        "orders bake=5m",
        "`bake=` does not apply to rolling deployments; `orders` deploys `rolling` by default, and has "
        "no bake time. Try: `/deploy orders`",
    ),
]


@pytest.mark.parametrize(("text", "message"), ERRORS, ids=[t for t, _ in ERRORS])
def test_error_messages(text: str, message: str) -> None:
    with pytest.raises(GrammarError) as caught:
        parse(text, CATALOG)
    assert caught.value.message == message
    assert str(caught.value) == message


# Every suggestion is a command that parses (a fix only the person can write, like a tag, gets no `Try:`).
RUNNABLE = [(t, m.rsplit("Try: `/deploy ", 1)[1][:-1]) for t, m in ERRORS if "Try: " in m]


@pytest.mark.parametrize(("text", "example"), RUNNABLE, ids=[t for t, _ in RUNNABLE])
def test_corrected_examples_parse(text: str, example: str) -> None:
    parse(example, CATALOG)


def test_unknown_service_in_an_empty_catalog_points_to_help() -> None:
    with pytest.raises(GrammarError) as caught:
        parse("ui", Catalog({}))
    assert caught.value.message == "Unknown service `ui`; the catalog lists no services. Try: `/deploy help`"


def test_long_user_text_is_shortened_in_messages() -> None:
    with pytest.raises(GrammarError) as caught:
        parse("x" * 300, CATALOG)
    assert "`" + "x" * 39 + "…`" in caught.value.message


def test_grammar_error_is_a_value_error() -> None:
    assert issubclass(GrammarError, ValueError)


def test_help_examples_parse() -> None:
    examples = [e for e in re.findall(r"`/deploy ([^`]*)`", HELP_TEXT) if not re.search(r"[<\[]", e)]
    assert len(examples) >= 4
    for text in examples:
        parse(text, CATALOG)


# --- properties -------------------------------------------------------------------------------------------------

WORDS = [
    "catalog",
    "ui",
    "orders",
    "status",
    "history",
    "approve",
    "rollback",
    "lock",
    "unlock",
    "help",
    "/deploy",
    "canary",
    "linear",
    "bg",
    "rolling",
    "10%",
    "0.1%",
    "99.9%",
    "3%",
    "12.25%",
    "100%",
    "10",
    "%",
    "catalgo",
    "canery",
    "bluegreen",
    "imgae=:1",
    "bak=5m",
    "image=team/ui",
    "taskdef=ui",
    "approve=tset",
    "image=:v2",
    "image=",
    "image=a/b",
    f"image=@{DIGEST}",
    "taskdef=ui:3",
    "taskdef=",
    "bake=5m",
    "bake=25h",
    "canary-bake=1m",
    "step-bake=2h",
    "approve=test,prod",
    "approve=none",
    "approve=",
    "approve=,",
    'reason="',
    'reason="x y"',
    "reason=“a”",
    "reason='",
    "'",
    '"',
    "“",
    "=",
    "==",
    "reason=",
    "50",
    "0",
    "\u00a0",
    "\n",
]
grammarish = st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=6)), max_size=8).map(" ".join)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(), grammarish))
@example('reason="')
@example("catalog reason=“")
@example("catalog canary 10 %")
@example("catalgo canery 10 % imgae=:1.3.0 bak=5m")
def test_parse_raises_only_grammar_error_and_every_suggestion_parses(text: str) -> None:
    try:
        parse(text, CATALOG)
    except GrammarError as exc:
        assert "\n" not in exc.message
        if exc.example is None:
            assert "Try:" not in exc.message
        else:
            assert exc.message == f"{exc.problem} Try: `/deploy {exc.example}`"
            parse(exc.example, CATALOG)  # the suggested command parses as it is shown


# Raw text, leading and doubled whitespace included: a command holds its reason as the grammar reads it.
reasons = st.text(max_size=40).filter(
    lambda r: not (any(c in DOUBLE_QUOTES for c in r) and any(c in SINGLE_QUOTES for c in r))
)
free_reasons = st.none() | st.text(max_size=40)
durations = st.none() | st.builds(timedelta, seconds=st.integers(0, 86400))
services = st.sampled_from(CATALOG.names())
tags = st.from_regex(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}\Z")
images = st.none() | tags.map(lambda t: f":{t}") | tags.map(lambda t: f"{ECR}:{t}") | st.just(f"{ECR}@{DIGEST}")
stages = st.none() | st.sets(st.sampled_from(PAUSE_STAGES)).map(lambda s: tuple(x for x in HookStage if x in s))


@st.composite
def deploys(draw: st.DrawFn) -> Deploy:
    strategy = draw(st.sampled_from(Strategy))
    low = {C: 1, L: 30}.get(strategy)
    percent = draw(st.none() | st.integers(low, 999).map(lambda t: t / 10)) if low else None
    image = draw(images)
    return Deploy(
        service=draw(services),
        strategy=strategy,
        percent=percent,
        image=image,
        taskdef=None if image else draw(st.none() | st.from_regex(r"\A[A-Za-z0-9_-]{1,20}:[1-9][0-9]{0,4}\Z")),
        bake=None if strategy is R else draw(durations),
        canary_bake=draw(durations) if strategy is C else None,
        step_bake=draw(durations) if strategy is L else None,
        approve=draw(stages),
        reason=draw(st.none() | reasons),
    )


commands = st.one_of(
    deploys(),
    st.builds(Status, st.none() | services),
    st.builds(History, services, st.integers(1, 50)),
    st.builds(Approve, services),
    st.builds(Unlock, services),
    st.builds(Rollback, services, free_reasons),
    st.builds(Lock, services, free_reasons),
    st.just(Help()),
    st.just(OpenForm()),
)


@settings(max_examples=500)
@given(commands)
@example(Rollback("catalog", " leading space"))
@example(Deploy("ui", BG, reason="  "))
def test_format_then_parse_gives_the_command_back(command: Command) -> None:
    assert parse(format_command(command), CATALOG) == command
