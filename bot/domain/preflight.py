"""Will ECS take this deployment on this service? The request checked against the service as ECS describes it (pure).

Called before any ECS call that changes something, so a person reads what is wrong and what to type instead of
ECS's InvalidParameterException (or, worse, a deployment ECS accepts but runs without a hook someone relies on).
Sources are in ECS_BEHAVIOUR.md §3–4: BLUE_GREEN, CANARY and LINEAR on a load-balanced service need each load
balancer's `advancedConfiguration` (alternate target group, production listener rule, role); CANARY and LINEAR
need something to shift traffic on (a load balancer, Service Connect or VPC Lattice); a rolling update passes no
traffic-shift stage, so a Lambda hook kept from the service's configuration at such a stage would never run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.domain.enums import HookTargetType, Strategy, hook_stages_of
from bot.domain.snapshot import ServiceInfo

SHIFTING = frozenset({Strategy.BLUE_GREEN, Strategy.CANARY, Strategy.LINEAR})
STEPPED = frozenset({Strategy.CANARY, Strategy.LINEAR})
ADVANCED_FIELDS = ("alternateTargetGroupArn", "productionListenerRule", "roleArn")
MAX_BAKE_MINUTES = 1440  # bakeTimeInMinutes, canaryBakeTimeInMinutes, stepBakeTimeInMinutes: 0–1440


@dataclass(frozen=True)
class Refusal:
    """Why ECS would not run the request, and the strategy to suggest instead (None: change the service)."""

    rule: str
    reason: str
    instead: Strategy | None = None


def check_request(
    service_key: str, strategy: Strategy, info: ServiceInfo, bakes_minutes: Sequence[int] = ()
) -> Refusal | None:
    """The first reason ECS would refuse (or silently mis-run) `strategy` on this service, else None."""
    for check in (_load_balancers, _nothing_to_shift, _kept_hooks):
        refusal = check(service_key, strategy, info)
        if refusal is not None:
            return refusal
    too_long = [m for m in bakes_minutes if not 0 <= m <= MAX_BAKE_MINUTES]
    if too_long:
        return Refusal("bake_out_of_range", f"ECS bakes for 0 to {MAX_BAKE_MINUTES} minutes (24h), not {too_long[0]}.")
    return None


def missing_advanced(load_balancer: Mapping[str, Any]) -> list[str]:
    """The advancedConfiguration fields a load balancer lacks for blue/green, canary and linear."""
    advanced = load_balancer.get("advancedConfiguration") or {}
    return [f for f in ADVANCED_FIELDS if not advanced.get(f)]


def _load_balancers(key: str, strategy: Strategy, info: ServiceInfo) -> Refusal | None:
    if strategy not in SHIFTING:
        return None
    for lb in info.load_balancers:
        missing = missing_advanced(lb)
        if missing:
            group = str(lb.get("targetGroupArn") or lb.get("loadBalancerName") or "?").rsplit(":", 1)[-1]
            group = group.removeprefix("targetgroup/")
            return Refusal(
                "lb_not_advanced",
                f"`{key}`'s load balancer (`{group}`) has no {', '.join(missing)} in its advancedConfiguration, so "
                f"ECS cannot shift its traffic: {strategy_word(strategy)} needs an alternate target group, a "
                "production listener rule and a role on each load balancer. Add them to the service, or deploy "
                "rolling.",
                Strategy.ROLLING,
            )
    return None


def _nothing_to_shift(key: str, strategy: Strategy, info: ServiceInfo) -> Refusal | None:
    if strategy in STEPPED and info.headless:
        return Refusal(
            "nothing_to_shift",
            f"`{key}` has no load balancer, Service Connect or VPC Lattice, so ECS can only switch it all at once "
            f"({strategy_word(strategy)} needs traffic to shift).",
            Strategy.BLUE_GREEN,
        )
    return None


def _kept_hooks(key: str, strategy: Strategy, info: ServiceInfo) -> Refusal | None:
    passes = hook_stages_of(strategy)
    for hook in info.hooks:
        if (hook.get("targetType") or HookTargetType.AWS_LAMBDA) != HookTargetType.AWS_LAMBDA:
            continue  # PAUSE hooks are DeployBot's own: each deployment writes the ones it needs
        never = [s for s in hook.get("lifecycleStages") or () if s not in {h.value for h in passes}]
        if never:
            name = str(hook.get("hookTargetArn") or "?").rsplit(":", 1)[-1]
            return Refusal(
                "hook_never_runs",
                f"`{key}` has a Lambda hook (`{name}`) at {', '.join(never)}, a stage a {strategy_word(strategy)} "
                "deployment never passes, so ECS would deploy without running it. Deploy with a strategy that "
                "passes it, or take the hook off the service.",
                Strategy.BLUE_GREEN,
            )
    return None


def strategy_word(strategy: Strategy) -> str:
    """`rolling`, `blue/green`, `canary`, `linear`."""
    return {Strategy.BLUE_GREEN: "blue/green"}.get(strategy, strategy.value.lower())


__all__ = ["Refusal", "check_request", "missing_advanced", "strategy_word"]
