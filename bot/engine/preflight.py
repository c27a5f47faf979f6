"""Before ECS is asked to change anything: the request checked against the service as ECS describes it."""

from __future__ import annotations

from bot.domain import policy, preflight
from bot.domain.catalog.loader import ServiceConfig
from bot.domain.durations import whole_minutes
from bot.domain.enums import Strategy
from bot.domain.grammar import parser as grammar
from bot.domain.snapshot import ServiceInfo
from bot.engine.answers import Answer, refused


def preflight_problem(service: ServiceConfig, info: ServiceInfo, cmd: grammar.Deploy) -> Answer | None:
    """The refusal for a request ECS would not run on this service as described (bot/domain/preflight.py)."""
    refusal = preflight.check_request(service.key, cmd.strategy, info, _bakes(service, cmd))
    if refusal is None:
        return None
    text = refusal.reason
    if refusal.instead is not None:
        instead = grammar.Deploy(cmd.service, refusal.instead, image=cmd.image, taskdef=cmd.taskdef, reason=cmd.reason)
        # Suggest only what would pass this same check (and the catalog's approvals).
        stages = cmd.approve if cmd.approve is not None else service.approval_stages
        fine = policy.check_strategy(service, instead.strategy, stages).allowed
        if fine and preflight.check_request(service.key, instead.strategy, info, _bakes(service, instead)) is None:
            text += f" Try: `/deploy {grammar.format_command(instead)}`"
    return refused(text, refusal.rule)


def _bakes(service: ServiceConfig, cmd: grammar.Deploy) -> list[int]:
    if cmd.strategy is Strategy.ROLLING:
        return []
    bakes = [cmd.bake if cmd.bake is not None else service.bake]
    if cmd.strategy is Strategy.CANARY:
        bakes.append(cmd.canary_bake or service.canary_bake)
    elif cmd.strategy is Strategy.LINEAR:
        bakes.append(cmd.step_bake or service.step_bake)
    return [whole_minutes(b) for b in bakes]
