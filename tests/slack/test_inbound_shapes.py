"""Shapes Bolt itself would choke on (a 500 before any listener) are refused as malformed: table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from bot.slack.blocks import form_values
from bot.slack.inbound import shape_problem
from tests.reliability import mutate

EVENT = mutate.event()
CLICK = mutate.click()
FORM = mutate.submission()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (EVENT, None),
        (CLICK, None),
        (FORM, None),
        ({**EVENT, "authorizations": ["dep-1-v1"]}, "`authorizations` must be a list of objects"),
        ({**EVENT, "authorizations": {}}, "`authorizations` must be a list of objects"),
        ({**EVENT, "event": {**EVENT["event"], "message": "hi"}}, "`event.message` must be an object"),
        ({**EVENT, "event": {**EVENT["event"], "user": 7}}, "`event.user` must be an id or an object"),
        ({**EVENT, "team_id": ["T1"]}, "`team_id` must be a string"),
        ({"type": "url_verification", "challenge": "c", "event": None}, "`event` must be an object"),
        ({**CLICK, "team": "T0UNICORN"}, "an interaction's `team` is an object"),
        ({**CLICK, "enterprise": 5}, "`enterprise` must be an id or an object"),
        ({**CLICK, "is_enterprise_install": []}, "`is_enterprise_install` must be a boolean"),
        ({**FORM, "view": {k: v for k, v in FORM["view"].items() if k != "type"}}, "a view payload needs `view.type`"),
        (
            {**FORM, "view": {**FORM["view"], "app_installed_team_id": 1}},
            "`view.app_installed_team_id` must be a string",
        ),
    ],
)
def test_shape_problem(body: dict[str, Any], problem: str | None) -> None:
    assert shape_problem(body) == problem


@pytest.mark.parametrize(
    "values",
    [{"service": "catalog"}, {"service": {"service": 7}}, {"service": {"service": {"selected_option": "x"}}}, []],
)
def test_mis_shaped_form_fields_read_as_blank(values: Any) -> None:
    assert form_values(values)["service"] is None
