"""Pure Block Kit builders for every message, modal and App Home view DeployBot shows.

Everything is built with slack_sdk's Block Kit models and serialised with `.to_dict()`, so Slack's limits are
checked on every message. Nothing here does I/O: callers pass `now`, the catalog entry and the views.

Button contract (handlers parse it): `action_id` `deploy_approve` / `deploy_rollback`; `value`
`"{deployment_id}|{hook_id}"` (roll back without a pending hook: `"{deployment_id}|-"`), read back with
`parse_button_value`; the actions block's `block_id` is `"dep-{id}-v{version}"`, new on every re-render.
"""

from __future__ import annotations

from bot.domain.text import clip, escape
from bot.slack.blocks.answers import ephemeral, help_message, history_message, status_message
from bot.slack.blocks.base import Message, plain_fallback, slack_date
from bot.slack.blocks.events import (
    event_message,
    incident_announcement,
    incident_closing,
    reminder_message,
    timeout_warning_message,
)
from bot.slack.blocks.forms import FORM_CALLBACK, FORM_FIELDS, app_home, deploy_modal, form_values, modal_errors
from bot.slack.blocks.parts import traffic_bar
from bot.slack.blocks.root import (
    APPROVE_ACTION,
    ROLLBACK_ACTION,
    actions_block_id,
    button_value,
    parse_button_value,
    root_message,
)

__all__ = [
    "APPROVE_ACTION",
    "FORM_CALLBACK",
    "FORM_FIELDS",
    "ROLLBACK_ACTION",
    "Message",
    "actions_block_id",
    "app_home",
    "button_value",
    "clip",
    "deploy_modal",
    "ephemeral",
    "escape",
    "event_message",
    "form_values",
    "help_message",
    "history_message",
    "incident_announcement",
    "incident_closing",
    "modal_errors",
    "parse_button_value",
    "plain_fallback",
    "reminder_message",
    "root_message",
    "slack_date",
    "status_message",
    "timeout_warning_message",
    "traffic_bar",
]
