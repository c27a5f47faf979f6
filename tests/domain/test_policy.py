"""Policy: who may deploy, approve, roll back and lock; strategy and approval checks; the membership cache."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.catalog.schema import ServiceConfig
from bot.domain.enums import HookStage, Strategy
from bot.domain.policy import (
    CachedMembership,
    MembershipUnavailable,
    Verdict,
    check_approvals,
    check_strategy,
    is_member,
    may_approve,
    may_deploy,
    may_lock,
    may_rollback,
    may_unlock,
)

PROD, TEST = HookStage.PRE_PRODUCTION_TRAFFIC_SHIFT, HookStage.POST_TEST_TRAFFIC_SHIFT
GROUPS = {"S0APPROVERS": frozenset({"U0BOB", "U0CAROL"}), "S0ONCALL": frozenset({"U0DAN"})}

CATALOG = ServiceConfig(
    key="catalog",
    cluster="c",
    service="catalog",
    region="us-east-1",
    container="catalog",
    deployers=("U0ALICE", "S0APPROVERS"),
    approvers=("S0APPROVERS",),
    incident_responders=("S0ONCALL",),
    channels=("C0DEPLOYS", "C0INC42"),
    four_eyes=True,
    approval_stages=(PROD,),
    strategy=Strategy.CANARY,
)
OPEN = replace(CATALOG, key="ui", channels=(), four_eyes=False)
ORDERS = replace(CATALOG, key="orders", strategy=Strategy.ROLLING, approval_stages=())


def groups(group_id: str) -> frozenset[str]:
    return GROUPS.get(group_id, frozenset())


def no_lookups(group_id: str) -> frozenset[str]:
    raise AssertionError(f"membership of {group_id} should not be needed")


NOT_DEPLOYER = Verdict(False, "not_deployer", "you are not one of `catalog`'s deployers")
WRONG_CHANNEL = Verdict(False, "channel_not_allowed", "`/deploy catalog` is only allowed in <#C0DEPLOYS>, <#C0INC42>")
NOT_APPROVER = Verdict(False, "not_approver", "you are not one of `catalog`'s approvers")
FOUR_EYES = Verdict(
    False, "four_eyes", "four-eyes rule: you requested this deployment; another approver must approve it"
)


@pytest.mark.parametrize(
    ("service", "user", "channel", "expected"),
    [
        (CATALOG, "U0ALICE", "C0DEPLOYS", Verdict.ok()),  # listed directly
        (CATALOG, "U0BOB", "C0INC42", Verdict.ok()),  # through a user group
        (CATALOG, "U0DAN", "C0DEPLOYS", NOT_DEPLOYER),  # responder, not deployer
        (CATALOG, "U0EVE", "C0DEPLOYS", NOT_DEPLOYER),
        (CATALOG, "U0EVE", "C0RANDOM", NOT_DEPLOYER),  # who you are is checked before where you are
        (CATALOG, "U0ALICE", "C0RANDOM", WRONG_CHANNEL),
        (OPEN, "U0ALICE", "C0RANDOM", Verdict.ok()),  # no allow-list: any channel
    ],
)
def test_may_deploy(service: ServiceConfig, user: str, channel: str, expected: Verdict) -> None:
    assert may_deploy(service, user, channel, groups) == expected


@pytest.mark.parametrize(
    ("service", "user", "requester", "expected"),
    [
        (CATALOG, "U0BOB", "U0ALICE", Verdict.ok()),
        (CATALOG, "U0BOB", "U0BOB", FOUR_EYES),
        (OPEN, "U0BOB", "U0BOB", Verdict.ok()),  # the service does not ask for four eyes
        (CATALOG, "U0ALICE", "U0BOB", NOT_APPROVER),  # a deployer is not an approver
        (CATALOG, "U0ALICE", "U0ALICE", NOT_APPROVER),  # not an approver comes first
    ],
)
def test_may_approve(service: ServiceConfig, user: str, requester: str, expected: Verdict) -> None:
    assert may_approve(service, user, requester, groups) == expected


@pytest.mark.parametrize(
    ("user", "channel", "allowed"),
    [
        ("U0ALICE", "C0DEPLOYS", True),  # deployer
        ("U0CAROL", "C0DEPLOYS", True),  # approver (group)
        ("U0DAN", "C0INC99", True),  # incident responder, from a channel outside the allow-list
        ("U0ALICE", "C0RANDOM", True),  # deployer outside the allow-list: rollback ignores it
        ("U0EVE", "C0DEPLOYS", False),
    ],
)
def test_may_rollback_from_any_channel(user: str, channel: str, allowed: bool) -> None:
    expected = (
        Verdict.ok()
        if allowed
        else Verdict(
            False, "not_responder", "only `catalog`'s deployers, approvers or incident responders may roll it back"
        )
    )
    assert may_rollback(CATALOG, user, channel, groups) == expected


@pytest.mark.parametrize(
    ("check", "action"),
    [(may_lock, "lock it"), (may_unlock, "unlock it")],
)
@pytest.mark.parametrize(("user", "allowed"), [("U0ALICE", True), ("U0BOB", True), ("U0DAN", True), ("U0EVE", False)])
def test_may_lock_and_unlock(check: Callable[..., Verdict], action: str, user: str, allowed: bool) -> None:
    expected = (
        Verdict.ok()
        if allowed
        else Verdict(
            False, "not_responder", f"only `catalog`'s deployers, approvers or incident responders may {action}"
        )
    )
    assert check(CATALOG, user, groups) == expected


ROLLING_REFUSED = Verdict(
    False,
    "stage_not_passed",
    "`orders` needs approval at PRE_PRODUCTION_TRAFFIC_SHIFT, which a rolling update never passes (it shifts no "
    "test or production traffic); bluegreen, canary and linear do. Try: `/deploy orders bluegreen`",
)
SCALE_UP = HookStage.POST_SCALE_UP


@pytest.mark.parametrize(
    ("service", "strategy", "stages", "expected"),
    [
        (ORDERS, Strategy.ROLLING, None, Verdict.ok()),  # catalog asks for no approval
        (ORDERS, Strategy.ROLLING, (), Verdict.ok()),
        (ORDERS, Strategy.ROLLING, (PROD,), ROLLING_REFUSED),  # approve= asked for a pause
        (replace(ORDERS, approval_stages=(PROD,)), Strategy.ROLLING, None, ROLLING_REFUSED),  # catalog's stages
        (ORDERS, Strategy.ROLLING, (SCALE_UP,), Verdict.ok()),  # a rolling update passes POST_SCALE_UP
        (ORDERS, Strategy.ROLLING, (HookStage.PRE_SCALE_UP, HookStage.RECONCILE_SERVICE), Verdict.ok()),
        (ORDERS, Strategy.CANARY, (PROD,), Verdict.ok()),
        (ORDERS, Strategy.BLUE_GREEN, (TEST, PROD), Verdict.ok()),
    ],
)
def test_check_strategy(
    service: ServiceConfig, strategy: Strategy, stages: tuple[HookStage, ...] | None, expected: Verdict
) -> None:
    assert check_strategy(service, strategy, stages) == expected


def test_check_strategy_names_every_stage() -> None:
    verdict = check_strategy(ORDERS, Strategy.ROLLING, (SCALE_UP, TEST, PROD))
    assert "approval at POST_TEST_TRAFFIC_SHIFT, PRE_PRODUCTION_TRAFFIC_SHIFT, which" in verdict.reason


@pytest.mark.parametrize(
    ("service", "requested", "expected"),
    [
        (CATALOG, None, Verdict.ok()),  # catalog's stages apply
        (CATALOG, (PROD,), Verdict.ok()),
        (CATALOG, (TEST, PROD), Verdict.ok()),  # adding a pause is fine
        (
            CATALOG,
            (),
            Verdict(
                False,
                "approval_required",
                "`catalog` requires approval at PRE_PRODUCTION_TRAFFIC_SHIFT; "
                "`approve=` can add stages, not remove these",
            ),
        ),
        (
            CATALOG,
            (TEST,),
            Verdict(
                False,
                "approval_required",
                "`catalog` requires approval at "
                "PRE_PRODUCTION_TRAFFIC_SHIFT; `approve=` can add "
                "stages, not remove these",
            ),
        ),
        (replace(ORDERS, approvers=()), (), Verdict.ok()),
        (
            replace(ORDERS, approvers=()),
            (TEST,),
            Verdict(False, "no_approvers", "`orders` names no approvers, so nobody could approve a pause"),
        ),
    ],
)
def test_check_approvals(service: ServiceConfig, requested: tuple[HookStage, ...] | None, expected: Verdict) -> None:
    assert check_approvals(service, requested) == expected


def test_direct_user_ids_need_no_group_lookup() -> None:
    assert is_member(("U0ALICE", "S0APPROVERS"), "U0ALICE", no_lookups)
    assert may_deploy(CATALOG, "U0ALICE", "C0DEPLOYS", no_lookups).allowed


def test_only_group_ids_are_looked_up() -> None:
    asked: list[str] = []

    def spy(group_id: str) -> frozenset[str]:
        asked.append(group_id)
        return frozenset()

    assert not is_member(("U0ALICE", "W0GUEST", "S0APPROVERS", "S0ONCALL"), "U0EVE", spy)
    assert asked == ["S0APPROVERS", "S0ONCALL"]


def test_verdict_ok() -> None:
    assert Verdict.ok() == Verdict(True, "ok", "")


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


class FakeSlack:
    def __init__(self) -> None:
        self.members = {"S0APPROVERS": ["U0BOB"]}
        self.calls: list[str] = []
        self.failing = False

    def __call__(self, group_id: str) -> list[str]:
        self.calls.append(group_id)
        if self.failing:
            raise ConnectionError("slack is down")
        return list(self.members.get(group_id, []))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def slack() -> FakeSlack:
    return FakeSlack()


@pytest.fixture
def cache(slack: FakeSlack, clock: FakeClock) -> CachedMembership:
    return CachedMembership(slack, timedelta(minutes=5), clock)


def test_cache_serves_within_ttl(cache: CachedMembership, slack: FakeSlack, clock: FakeClock) -> None:
    assert cache("S0APPROVERS") == frozenset({"U0BOB"})
    slack.members["S0APPROVERS"] = ["U0BOB", "U0CAROL"]
    clock.advance(minutes=4, seconds=59)
    assert cache("S0APPROVERS") == frozenset({"U0BOB"})
    assert slack.calls == ["S0APPROVERS"]


def test_cache_refetches_at_ttl(cache: CachedMembership, slack: FakeSlack, clock: FakeClock) -> None:
    cache("S0APPROVERS")
    slack.members["S0APPROVERS"] = ["U0CAROL"]
    clock.advance(minutes=5)
    assert cache("S0APPROVERS") == frozenset({"U0CAROL"})
    assert slack.calls == ["S0APPROVERS", "S0APPROVERS"]


def test_cache_keeps_groups_apart(cache: CachedMembership, slack: FakeSlack) -> None:
    assert cache("S0APPROVERS") == frozenset({"U0BOB"})
    assert cache("S0ONCALL") == frozenset()
    assert slack.calls == ["S0APPROVERS", "S0ONCALL"]


def test_cache_refetches_when_the_clock_goes_back(cache: CachedMembership, slack: FakeSlack, clock: FakeClock) -> None:
    cache("S0APPROVERS")
    clock.advance(hours=-1)
    cache("S0APPROVERS")
    assert len(slack.calls) == 2


def test_cache_does_not_keep_failures(cache: CachedMembership, slack: FakeSlack) -> None:
    slack.failing = True
    with pytest.raises(MembershipUnavailable):  # nothing cached: fail closed, and say it was Slack
        cache("S0APPROVERS")
    slack.failing = False
    assert cache("S0APPROVERS") == frozenset({"U0BOB"})


@pytest.mark.parametrize(("age_minutes", "served"), [(6, True), (59, True), (61, False)])
def test_while_slack_fails_the_last_good_copy_serves_for_an_hour(
    cache: CachedMembership, slack: FakeSlack, clock: FakeClock, age_minutes: int, served: bool
) -> None:
    cache("S0APPROVERS")
    clock.advance(minutes=age_minutes)
    slack.failing = True
    if served:
        assert cache("S0APPROVERS") == frozenset({"U0BOB"})
    else:
        with pytest.raises(MembershipUnavailable):
            cache("S0APPROVERS")


def test_an_invalidated_group_is_not_served_stale(cache: CachedMembership, slack: FakeSlack) -> None:
    cache("S0APPROVERS")
    cache.invalidate("S0APPROVERS")  # subteam_members_changed: someone may have been removed
    slack.failing = True
    with pytest.raises(MembershipUnavailable):
        cache("S0APPROVERS")


def test_cache_invalidate(cache: CachedMembership, slack: FakeSlack) -> None:
    cache("S0APPROVERS")
    cache("S0ONCALL")
    cache.invalidate("S0APPROVERS")
    cache("S0APPROVERS")
    cache("S0ONCALL")
    assert slack.calls == ["S0APPROVERS", "S0ONCALL", "S0APPROVERS"]
    cache.invalidate()
    cache("S0ONCALL")
    assert slack.calls[-1] == "S0ONCALL"


def test_cache_plugs_into_policy(cache: CachedMembership) -> None:
    assert may_approve(CATALOG, "U0BOB", "U0ALICE", cache).allowed
    assert not may_approve(CATALOG, "U0CAROL", "U0ALICE", cache).allowed
