"""The catalog: the example is valid, and every problem is reported with its line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.domain.catalog.loader import CatalogError, load_catalog, parse_catalog
from bot.domain.enums import HookStage, Strategy, TimeoutAction

ROOT = Path(__file__).resolve().parents[2]

BASE = """\
services:
  catalog:
    cluster: unicorn-watch
    region: us-east-1
    deployers: [U0ALICE]
    approvers: [S0APPROVERS]
"""


def test_example_catalog_describes_the_sandbox_services() -> None:
    catalog = load_catalog(ROOT / "services.example.yml")
    assert catalog.names() == ["ui", "catalog", "orders", "notifications"]
    ui, cat, orders, notifications = (catalog.get(n) for n in catalog.names())
    assert ui and ui.strategy is Strategy.BLUE_GREEN and ui.approval_stages == (HookStage.POST_TEST_TRAFFIC_SHIFT,)
    assert cat and cat.strategy is Strategy.CANARY and cat.approval_stages == (HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT,)
    assert cat.four_eyes and cat.canary_percent == 10.0 and cat.canary_bake == timedelta(minutes=5)
    assert orders and orders.strategy is Strategy.ROLLING and not orders.approval_stages
    assert notifications and notifications.strategy is Strategy.BLUE_GREEN
    assert all(s.cluster == "unicorn-watch" and s.region == "us-east-1" for s in catalog)


def test_defaults_apply_and_services_override_them() -> None:
    catalog, problems = parse_catalog(
        "defaults:\n  region: eu-west-1\n  cluster: c\n  deployers: [U0A1]\n  timeout_action: continue\n"
        "services:\n  a: {}\n  b:\n    region: us-west-2\n    container: app\n"
    )
    assert problems == []
    assert catalog is not None
    a, b = catalog.get("a"), catalog.get("b")
    assert a and a.region == "eu-west-1" and a.service == "a" and a.container == "a"
    assert a.timeout_action is TimeoutAction.CONTINUE
    assert b and b.region == "us-west-2" and b.container == "app"


def test_lookup_is_case_insensitive_and_suggests_close_names() -> None:
    catalog = load_catalog(ROOT / "services.example.yml")
    assert catalog.get("Catalog") is catalog.get("catalog")
    assert catalog.closest("catalgo")[0] == "catalog"


def _problem(text: str) -> tuple[int, str]:
    catalog, problems = parse_catalog(text, "services.yml")
    assert catalog is None
    assert len(problems) == 1, problems
    return problems[0].line, problems[0].message


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("    strategie: canary\n", 7, "unknown key `strategie` in service `catalog`; did you mean `strategy`?"),
        (
            "    approval_stages: [POST_TEST_TRAFIC_SHIFT]\n",
            7,
            "`approval_stages`: unknown stage `POST_TEST_TRAFIC_SHIFT`; did you mean `POST_TEST_TRAFFIC_SHIFT`?",
        ),
        (
            "    approval_stages: [TEST_TRAFFIC_SHIFT]\n",
            7,
            "`approval_stages`: ECS does not allow an approval pause at TEST_TRAFFIC_SHIFT",
        ),
        (
            "    approval_stages: [PRODUCTION_TRAFFIC_SHIFT]\n",
            7,
            "`approval_stages`: ECS does not allow an approval pause at PRODUCTION_TRAFFIC_SHIFT",
        ),
        ("    canary_percent: 100\n", 7, "`canary_percent`: 100 is out of range (0.1–99.9)"),
        ("    linear_step_percent: 2\n", 7, "`linear_step_percent`: 2 is out of range (3–99.9)"),
        ("    canary_percent: 12.25\n", 7, "`canary_percent`: 12.25 has more than one decimal"),
        ("    canary_percent: lots\n", 7, "`canary_percent` must be a number between 0.1 and 99.9"),
        ("    canary_percent: true\n", 7, "`canary_percent` must be a number between 0.1 and 99.9"),
        ("    canary_percent: 1" + "0" * 400 + "\n", 7, "`canary_percent` must be a number between 0.1 and 99.9"),
        ("    bake: 25h\n", 7, "`bake`: `25h` is longer than 24h"),
        ("    bake: 10 minutes\n", 7, "`bake`: `10 minutes` is not a duration; write it like 90s, 15m or 2h"),
        ("    approval_timeout: 30s\n", 7, "`approval_timeout`: `30s` is shorter than 1m"),
        ("    strategy: bluegreenish\n", 7, "`strategy`: unknown value `bluegreenish`; expected one of rolling"),
        ("    timeout_action: explode\n", 7, "`timeout_action`: unknown value `explode`; expected one of ROLLBACK"),
        ("    four_eyes: maybe\n", 7, "`four_eyes` must be true or false"),
        (
            "    incident_responders: [alice]\n",
            7,
            "`incident_responders`: `alice` is not a Slack user id (U…/W…) or user-group id (S…)",
        ),
        ("    channels: [deploys]\n", 7, "`channels`: `deploys` is not a Slack channel id (like `C0DEPLOYS`)"),
        ("    incident_channel: '#incident'\n", 7, "`incident_channel`: `#incident` is not a Slack channel id"),
        ("    role_arn: deploybot\n", 7, "`role_arn`: `deploybot` is not an IAM role ARN"),
        ("    channels: C0DEPLOYS\n", 7, "`channels` must be a list, like `[U0ALICE, S0APPROVERS]`"),
        ("    container: ''\n", 7, "`container` must be a non-empty string"),
        ("    cluster: other\n", 7, "`cluster` appears twice in service `catalog`"),
    ],
)
def test_each_problem_names_its_line(extra: str, line: int, message: str) -> None:
    got_line, got_message = _problem(BASE + extra)
    assert got_line == line
    assert got_message.startswith(message)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("services:\n  a:\n    region: us-east-1\n    deployers: [U0A1]\n", 2, "service `a` is missing `cluster`"),
        ("services:\n  a:\n    cluster: c\n    deployers: [U0A1]\n", 2, "service `a` is missing `region`"),
        (
            "services:\n  a:\n    cluster: c\n    region: us-east-1\n    deployers: []\n",
            2,
            "service `a` has an empty `deployers` list",
        ),
        (
            "services:\n  a:\n    cluster: c\n    region: us-east-1\n    deployers: [U0A1]\n"
            "    approval_stages: [POST_SCALE_UP]\n",
            2,
            "service `a` asks for approval but names no `approvers`",
        ),
        (
            "services:\n  a:\n    cluster: c\n    region: us-east-1\n    deployers: [U0A1]\n    four_eyes: true\n",
            2,
            "service `a` sets `four_eyes` but names no `approvers`",
        ),
        ("services:\n  Bad Name:\n    cluster: c\n", 2, "service name `Bad Name` must be lower-case"),
        ("services:\n  a: [1, 2]\n", 2, "service `a` must be a mapping"),
        ("services:\n  status:\n    cluster: c\n", 2, "service name `status` is a /deploy command"),
        ("defaults: {}\n", 1, "missing `services:`"),
        ("services: {}\n", 1, "`services:` is empty"),
        ("- just\n- a list\n", 1, "the catalog must be a mapping"),
        ("services:\n  a: {cluster: [\n", 3, "YAML syntax error"),
        ("", 0, "YAML syntax error: the file is empty"),
    ],
)
def test_structural_problems(text: str, line: int, message: str) -> None:
    got_line, got_message = _problem(text)
    assert (got_line, got_message[: len(message)]) == (line, message)


def test_every_problem_is_reported_at_once() -> None:
    text = BASE + "    canary_percent: 0\n    bake: forever\n    colour: blue\n"
    _, problems = parse_catalog(text, "services.yml")
    assert [p.line for p in problems] == [7, 8, 9]
    assert str(problems[0]).startswith("services.yml:7: `canary_percent`")


def test_missing_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(CatalogError) as err:
        load_catalog(tmp_path / "nope.yml")
    assert "cannot read the catalog" in str(err.value)


def test_a_misspelt_top_level_key_is_named() -> None:
    _, problems = parse_catalog("servics:\n  a: {}\n", "services.yml")
    assert [str(p) for p in problems] == [
        "services.yml:1: unknown key `servics` in top level; did you mean `services`?",
        "services.yml:1: missing `services:`: list at least one service",
    ]
