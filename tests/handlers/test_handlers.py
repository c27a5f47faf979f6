"""The listeners' pure parts: reading the modal field by field, checking buttons, unescaping, wording answers."""

from __future__ import annotations

import pytest

from bot.domain.grammar import parser as grammar
from bot.engine.answers import Answer
from handlers.actions import button_target
from handlers.commands import form_metadata, unescape
from handlers.modals import metadata_channel, read_form
from handlers.replies import answer_line, channel_from
from tests.support import example_catalog

CATALOG = example_catalog()


def form(**fields: str | None) -> dict[str, str | None]:
    return {"service": None, "strategy": None, "percent": None, "image": None, "reason": None, **fields}


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        (form(), "service", "Pick a service"),
        (form(service="status"), "service", "Pick a service from the list"),
        (form(service="catalog", strategy="canary", percent="150"), "percent", "out of range"),
        (form(service="catalog", strategy="canary", percent="ten"), "percent", "not a percentage"),
        (form(service="orders", strategy="rolling", percent="10"), "percent", "needs canary or linear"),
        (form(service="catalog", image="not an image"), "image", "An image has no spaces"),
        (
            form(service="catalog", image="nginx"),
            "image",
            "Image `nginx` has no tag or digest; pin the version, like `nginx:<tag>`.",
        ),
        (form(service="catalog", reason='it\'s "quoted"'), "reason", "quote"),
    ],
)
def test_a_bad_field_is_reported_under_that_field(fields: dict[str, str | None], field: str, words: str) -> None:
    errors = read_form(fields, CATALOG)
    assert isinstance(errors, dict) and list(errors) == [field]
    assert words in errors[field]


def test_a_good_form_reads_as_the_command_would() -> None:
    fields = form(service="catalog", strategy="canary", percent="20 %", image=":1.2.3", reason="new\nsearch <!here>")
    command = read_form(fields, CATALOG)
    assert command == grammar.parse('catalog canary 20% image=:1.2.3 reason="new search <!here>"', CATALOG)


def test_blank_optional_fields_take_the_catalog_defaults() -> None:
    assert read_form(form(service="catalog"), CATALOG) == grammar.parse("catalog", CATALOG)


@pytest.mark.parametrize(
    ("value", "block_id", "expected"),
    [
        ("12|ecs-pause-abc", "dep-12-v3", (12, "ecs-pause-abc")),
        ("12|-", "dep-12-v0", (12, None)),
        ("12|ecs-pause-abc", "dep-13-v3", None),  # value and block disagree: edited
        ("12|../x", "dep-12-v3", None),
        ("0|-", "dep-0-v1", None),
        (None, "dep-12-v3", None),
        ("12|-", "AB12C", None),
    ],
)
def test_button_values_are_checked_against_their_block(value: object, block_id: str, expected: object) -> None:
    assert button_target({"value": value, "block_id": block_id}) == expected


def test_command_text_is_unescaped_once() -> None:
    assert unescape("rollback catalog &lt;!channel&gt; &amp;amp;") == "rollback catalog <!channel> &amp;"


def test_refusals_name_their_rule() -> None:
    assert answer_line(Answer("you are not one of `x`'s approvers", ok=False, rule="not_approver")) == (
        "🚫 Not allowed: you are not one of `x`'s approvers (rule `not_approver`)"
    )
    assert answer_line(Answer("Unknown service `y`.", ok=False)) == "⚠️ Unknown service `y`."
    assert answer_line(Answer("Done.")) == "Done."


def test_private_metadata_round_trip_and_distrust() -> None:
    assert metadata_channel(form_metadata("C0DEPLOYS")) == "C0DEPLOYS"
    for raw in ("", "{", '{"channel": "<!channel>"}', '["C0DEPLOYS"]', None):
        assert metadata_channel(raw) is None
    assert channel_from("D0ALICE") == "D0ALICE" and channel_from("U0ALICE") is None
