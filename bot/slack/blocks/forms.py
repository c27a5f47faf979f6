"""The `/deploy` modal, reading its submitted values back, its inline errors, and the App Home tab (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    Block,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    Option,
    OptionGroup,
    PlainTextInputElement,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.readmodels import DeploymentView
from bot.domain.text import clip
from bot.slack.blocks.answers import active_line, history_line, packed
from bot.slack.blocks.base import MAX_VIEW_BLOCKS, context, plain, section
from bot.slack.blocks.root import controls

FORM_CALLBACK = "deploy_form"
FORM_FIELDS = ("service", "strategy", "percent", "image", "reason")
STRATEGY_OPTIONS = (("rolling", "Rolling"), ("bluegreen", "Blue/green"), ("canary", "Canary"), ("linear", "Linear"))
MAX_OPTIONS = 100
OPTION_VALUE_CHARS = 150
REASON_MAX = 1000
ERROR_CHARS = 150
HOME_RECENT_BUDGET = 6_000


def _option(value: str, label: str) -> Option:
    return Option(value=value, text=plain(label, 75))


def _service_select(names: Sequence[str], initial: str | None) -> StaticSelectElement:
    usable = [n for n in dict.fromkeys(names) if 0 < len(n) <= OPTION_VALUE_CHARS]
    options = [_option(n, n) for n in usable[: MAX_OPTIONS * MAX_OPTIONS]]
    chosen = next((o for o in options if o.value == initial), None)
    if len(options) <= MAX_OPTIONS:
        return StaticSelectElement(
            action_id="service", placeholder=plain("Pick a service", 150), options=options, initial_option=chosen
        )
    groups = [options[i : i + MAX_OPTIONS] for i in range(0, len(options), MAX_OPTIONS)]
    option_groups = [OptionGroup(label=plain(clip(f"{g[0].value} – {g[-1].value}", 75), 75), options=g) for g in groups]
    return StaticSelectElement(
        action_id="service",
        placeholder=plain("Pick a service", 150),
        option_groups=option_groups,
        initial_option=chosen,
    )


def _text_input(
    block_id: str, label: str, hint: str, initial: str | None, *, multiline: bool = False, max_length: int | None = None
) -> InputBlock:
    element = PlainTextInputElement(
        action_id=block_id, initial_value=initial or None, multiline=multiline or None, max_length=max_length
    )
    return InputBlock(
        block_id=block_id, label=plain(label, 2000), element=element, hint=plain(hint, 2000), optional=True
    )


def deploy_modal(
    catalog_names: Sequence[str], defaults: Mapping[str, str | None] | None = None, *, private_metadata: str = ""
) -> dict[str, Any]:
    """The phone-friendly `/deploy` form; `defaults` pre-fills fields by block id (e.g. after an error)."""
    d = defaults or {}
    strategies = [_option(v, label) for v, label in STRATEGY_OPTIONS]
    strategy = next((o for o in strategies if o.value == d.get("strategy")), None)
    blocks: list[Block] = [
        InputBlock(
            block_id="service", label=plain("Service", 2000), element=_service_select(catalog_names, d.get("service"))
        ),
        InputBlock(
            block_id="strategy",
            label=plain("Strategy", 2000),
            element=StaticSelectElement(
                action_id="strategy",
                placeholder=plain("How to shift traffic", 150),
                options=strategies,
                initial_option=strategy,
            ),
        ),
        _text_input(
            "percent",
            "Percent",
            "Canary first step (0.1–99.9) or linear step (3–99.9); empty = catalog default",
            d.get("percent"),
        ),
        _text_input("image", "Image", ":tag or full URI; empty = the task definition's current image", d.get("image")),
        _text_input(
            "reason",
            "Reason",
            "Shown in the channel and the history",
            d.get("reason"),
            multiline=True,
            max_length=REASON_MAX,
        ),
    ]
    view = View(
        type="modal",
        callback_id=FORM_CALLBACK,
        title=plain("Deploy", 24),
        submit=plain("Deploy", 24),
        close=plain("Cancel", 24),
        blocks=blocks,
        private_metadata=private_metadata[:3000] or None,
    )
    out: dict[str, Any] = view.to_dict()
    return out


def form_values(state_values: Mapping[str, Any]) -> dict[str, str | None]:
    """The submitted fields from Slack's `view.state.values` (block_id → action_id → value); blanks are None."""
    out: dict[str, str | None] = {}
    for field in FORM_FIELDS:
        block = state_values.get(field) if isinstance(state_values, Mapping) else None
        element = block.get(field) if isinstance(block, Mapping) else None
        element = element if isinstance(element, Mapping) else {}  # a mis-shaped field reads as blank
        selected = element.get("selected_option")
        raw = selected.get("value") if isinstance(selected, Mapping) else element.get("value")
        out[field] = raw.strip() or None if isinstance(raw, str) else None
    return out


def modal_errors(errors: Mapping[str, str]) -> dict[str, Any]:
    """The `response_action: errors` answer showing each message under its field; unknown fields are refused."""
    unknown = sorted(set(errors) - set(FORM_FIELDS))
    if unknown:
        raise ValueError(f"no such form field: {', '.join(unknown)}")
    return {"response_action": "errors", "errors": {k: clip(v, ERROR_CHARS) for k, v in errors.items() if v}}


def _active_group(view: DeploymentView, service: ServiceConfig | None, now: datetime) -> list[Block]:
    return [section(active_line(view, now)), *controls(view, service, now), DividerBlock()]


def app_home(
    active_views: Sequence[DeploymentView],
    my_recent_views: Sequence[DeploymentView],
    now: datetime,
    services: Mapping[str, ServiceConfig],
) -> dict[str, Any]:
    """The App Home tab: deployments in progress (with their buttons), then the viewer's recent ones."""
    recent, recent_more = packed([history_line(v, now) for v in my_recent_views], HOME_RECENT_BUDGET)
    tail: list[Block] = [HeaderBlock(text=plain("Your recent deployments", 150))]
    tail += recent or [context("You have not deployed anything yet.")]
    tail += [context(f"…and {recent_more} more")] if recent_more else []
    head: list[Block] = [HeaderBlock(text=plain("Deployments in progress", 150))]
    room = MAX_VIEW_BLOCKS - len(head) - len(tail) - 1  # one for "…and N more"
    shown = 0
    for view in active_views:
        group = _active_group(view, services.get(view.service_key), now)
        if len(head) - 1 + len(group) > room:
            break
        head += group
        shown += 1
    if not active_views:
        head.append(context("Nothing in progress."))
    elif shown < len(active_views):
        head.append(context(f"…and {len(active_views) - shown} more in progress (see `/deploy status`)"))
    home: dict[str, Any] = View(type="home", blocks=[*head, *tail]).to_dict()
    return home
