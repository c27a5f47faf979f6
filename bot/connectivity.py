"""Online checks for `deploybot check`: can the bot reach Slack and describe each catalog service?"""

from __future__ import annotations

from bot.config import Settings
from bot.domain.catalog.loader import Catalog
from bot.domain.problems import Problem
from bot.slack.checks import check_slack


def online_problems(settings: Settings, catalog: Catalog) -> tuple[list[Problem], list[str]]:
    """Call Slack's auth.test when a bot token is set, and describe every service when AWS is configured."""
    problems: list[Problem] = []
    notes: list[str] = []
    check_slack(settings, problems, notes)
    _check_ecs(catalog, problems, notes)
    return problems, notes


def _check_ecs(catalog: Catalog, problems: list[Problem], notes: list[str]) -> None:
    from bot.ecs.gateway import EcsError, EcsGateway, StartSpec, has_credentials
    from bot.ecs.requests import hook_findings

    if not has_credentials():
        notes.append("ECS: not checked (no AWS credentials found)")
        return
    gateway = EcsGateway(max_attempts=2)
    for service in catalog:
        try:
            info = gateway.read_service(service)
        except EcsError as exc:
            problems.append(Problem(catalog.path, 0, f"service `{service.key}`: ECS says {exc.code}: {exc.message}"))
            continue
        notes.append(f"ECS: {service.key} → {service.cluster}/{service.service} runs {info.task_definition}")
        spec = StartSpec(service.strategy, info.task_definition_arn, approval_stages=service.approval_stages)
        found, limits = hook_findings(info.deployment_configuration, spec)
        notes += [f"ECS: {service.key}: {note}" for note in found]
        problems += [Problem(catalog.path, 0, f"service `{service.key}`: {text}") for text in limits]
