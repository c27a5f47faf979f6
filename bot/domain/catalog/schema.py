"""The fields of one catalog service: their types, defaults and validation (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import yaml

from bot.domain.durations import DurationError, parse_duration
from bot.domain.enums import PAUSE_FORBIDDEN_STAGES, HookStage, Strategy, TimeoutAction
from bot.domain.problems import ProblemSink, scalar, suggest

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
MAX_PAUSE_TIMEOUT = timedelta(minutes=20160)

STRATEGY_ALIASES: Mapping[str, Strategy] = {
    "rolling": Strategy.ROLLING,
    "bluegreen": Strategy.BLUE_GREEN,
    "blue-green": Strategy.BLUE_GREEN,
    "blue_green": Strategy.BLUE_GREEN,
    "bg": Strategy.BLUE_GREEN,
    "canary": Strategy.CANARY,
    "linear": Strategy.LINEAR,
}


# Defaults of a service's fields; a deployment stored without a value falls back to the same ones.
DEFAULT_APPROVAL_TIMEOUT = timedelta(hours=4)
DEFAULT_TIMEOUT_ACTION = TimeoutAction.ROLLBACK
DEFAULT_CANARY_PERCENT = 10.0
DEFAULT_CANARY_BAKE = timedelta(minutes=10)
DEFAULT_LINEAR_STEP_PERCENT = 20.0
DEFAULT_STEP_BAKE = timedelta(minutes=5)
DEFAULT_BAKE = timedelta(minutes=10)


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the bot knows about one deployable ECS service."""

    key: str
    cluster: str
    service: str
    region: str
    container: str
    deployers: tuple[str, ...]
    approvers: tuple[str, ...] = ()
    incident_responders: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    role_arn: str | None = None
    four_eyes: bool = False
    approval_stages: tuple[HookStage, ...] = ()
    approval_timeout: timedelta = DEFAULT_APPROVAL_TIMEOUT
    timeout_action: TimeoutAction = DEFAULT_TIMEOUT_ACTION
    incident_channel: str | None = None
    strategy: Strategy = Strategy.BLUE_GREEN
    canary_percent: float = DEFAULT_CANARY_PERCENT
    canary_bake: timedelta = DEFAULT_CANARY_BAKE
    linear_step_percent: float = DEFAULT_LINEAR_STEP_PERCENT
    step_bake: timedelta = DEFAULT_STEP_BAKE
    bake: timedelta = DEFAULT_BAKE
    reminder_interval: timedelta = timedelta(minutes=30)


Parser = Callable[[ProblemSink, str, yaml.Node], Any]


def _string(sink: ProblemSink, name: str, node: yaml.Node) -> str | None:
    value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, str) or not value.strip():
        sink.add(node, f"`{name}` must be a non-empty string")
        return None
    return value.strip()


def _pattern(regex: re.Pattern[str], what: str, example: str) -> Parser:
    def parse(sink: ProblemSink, name: str, node: yaml.Node) -> str | None:
        value = _string(sink, name, node)
        if value is not None and not regex.match(value):
            sink.add(node, f"`{name}`: `{value}` is not {what} (like `{example}`)")
            return None
        return value

    return parse


def _bool(sink: ProblemSink, name: str, node: yaml.Node) -> bool | None:
    value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if not isinstance(value, bool):
        sink.add(node, f"`{name}` must be true or false")
        return None
    return value


def _list_of(item: Parser) -> Parser:
    def parse(sink: ProblemSink, name: str, node: yaml.Node) -> tuple[Any, ...] | None:
        if not isinstance(node, yaml.SequenceNode):
            sink.add(node, f"`{name}` must be a list, like `[U0ALICE, S0APPROVERS]`")
            return None
        values = [item(sink, name, child) for child in node.value]
        return None if any(v is None for v in values) else tuple(values)

    return parse


def _slack_principal(sink: ProblemSink, name: str, node: yaml.Node) -> str | None:
    value = _string(sink, name, node)
    if value is not None and not (USER_ID.match(value) or GROUP_ID.match(value)):
        sink.add(node, f"`{name}`: `{value}` is not a Slack user id (U…/W…) or user-group id (S…)")
        return None
    return value


def _stage(sink: ProblemSink, name: str, node: yaml.Node) -> HookStage | None:
    value = _string(sink, name, node)
    if value is None:
        return None
    upper = value.upper().replace("-", "_")
    if upper not in HookStage.__members__:
        sink.add(node, f"`{name}`: unknown stage `{value}`{suggest(upper, HookStage.__members__)}")
        return None
    stage = HookStage(upper)
    if stage in PAUSE_FORBIDDEN_STAGES:
        sink.add(
            node,
            f"`{name}`: ECS does not allow an approval pause at {stage} (it re-runs during a "
            "rollback); use POST_TEST_TRAFFIC_SHIFT or PRE_PRODUCTION_TRAFFIC_SHIFT",
        )
        return None
    return stage


def _duration(maximum: timedelta, minimum: timedelta = timedelta(0)) -> Parser:
    def parse(sink: ProblemSink, name: str, node: yaml.Node) -> timedelta | None:
        value = _string(sink, name, node)
        if value is None:
            return None
        try:
            parsed = parse_duration(value, maximum=maximum)
        except DurationError as exc:
            sink.add(node, f"`{name}`: {exc}")
            return None
        if parsed < minimum:
            sink.add(node, f"`{name}`: `{value}` is shorter than {int(minimum.total_seconds() // 60)}m")
            return None
        return parsed

    return parse


def _number(value: object) -> float | None:
    """The float a scalar's value spells, or None: YAML's true/yes is no number, nor an int too big for a float."""
    if isinstance(value, bool) or not isinstance(value, str | bytes | int | float):
        return None
    try:
        return float(value)
    except (ValueError, OverflowError):
        return None


def _percent(low: float, high: float) -> Parser:
    def parse(sink: ProblemSink, name: str, node: yaml.Node) -> float | None:
        value = scalar(node) if isinstance(node, yaml.ScalarNode) else None
        if isinstance(value, str) and value.endswith("%"):
            value = value[:-1]
        number = _number(value)
        if number is None:
            sink.add(node, f"`{name}` must be a number between {low:g} and {high:g}")
            return None
        if not low <= number <= high:
            sink.add(node, f"`{name}`: {number:g} is out of range ({low:g}–{high:g})")
            return None
        if round(number * 10) != number * 10:
            sink.add(node, f"`{name}`: {number:g} has more than one decimal (ECS steps are 0.1 %)")
            return None
        return number

    return parse


def _enum_alias(aliases: Mapping[str, Any], example: str) -> Parser:
    def parse(sink: ProblemSink, name: str, node: yaml.Node) -> Any:
        value = _string(sink, name, node)
        if value is None:
            return None
        if value.lower() not in aliases:
            sink.add(node, f"`{name}`: unknown value `{value}`; expected one of {example}")
            return None
        return aliases[value.lower()]

    return parse


FIELDS: Mapping[str, Parser] = {
    "cluster": _string,
    "service": _string,
    "region": _pattern(REGION, "an AWS region", "us-east-1"),
    "role_arn": _pattern(ROLE_ARN, "an IAM role ARN", "arn:aws:iam::123456789012:role/deploybot"),
    "container": _string,
    "channels": _list_of(_pattern(CHANNEL_ID, "a Slack channel id", "C0DEPLOYS")),
    "deployers": _list_of(_slack_principal),
    "approvers": _list_of(_slack_principal),
    "incident_responders": _list_of(_slack_principal),
    "four_eyes": _bool,
    "approval_stages": _list_of(_stage),
    "approval_timeout": _duration(MAX_PAUSE_TIMEOUT, timedelta(minutes=1)),
    "timeout_action": _enum_alias({a.value.lower(): a for a in TimeoutAction}, "ROLLBACK, CONTINUE"),
    "incident_channel": _pattern(CHANNEL_ID, "a Slack channel id", "C0INC42"),
    "strategy": _enum_alias(STRATEGY_ALIASES, "rolling, bluegreen, canary, linear"),
    "canary_percent": _percent(0.1, 99.9),
    "canary_bake": _duration(timedelta(hours=24)),
    "linear_step_percent": _percent(3.0, 99.9),
    "step_bake": _duration(timedelta(hours=24)),
    "bake": _duration(timedelta(hours=24)),
    "reminder_interval": _duration(timedelta(hours=24), timedelta(minutes=1)),
}
REQUIRED = ("cluster", "region", "deployers")


def build_service(
    sink: ProblemSink, key: str, node: yaml.Node, fields: Mapping[str, yaml.Node]
) -> ServiceConfig | None:
    """Validate one service's merged fields and build its config; problems go to `sink`."""
    before = len(sink.problems)
    values: dict[str, Any] = {}
    for name, value_node in fields.items():
        parser = FIELDS.get(name)
        if parser is None:
            sink.add(value_node, f"unknown key `{name}` in service `{key}`{suggest(name, FIELDS)}")
            continue
        values[name] = parser(sink, name, value_node)
    for name in REQUIRED:
        if name not in fields:
            sink.add(node, f"service `{key}` is missing `{name}`")
    _check_consistency(sink, key, node, values)
    if len(sink.problems) > before:
        return None
    values.setdefault("service", key)
    values.setdefault("container", values["service"])
    return ServiceConfig(key=key, **values)


def _check_consistency(sink: ProblemSink, key: str, node: yaml.Node, values: Mapping[str, Any]) -> None:
    if values.get("approval_stages") and not values.get("approvers"):
        sink.add(node, f"service `{key}` asks for approval but names no `approvers`")
    if values.get("four_eyes") and not values.get("approvers"):
        sink.add(node, f"service `{key}` sets `four_eyes` but names no `approvers`")
    if values.get("deployers") == ():
        sink.add(node, f"service `{key}` has an empty `deployers` list: nobody could deploy it")
