"""Who may deploy, approve, roll back and lock which service, and which deployments ECS can run (pure)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from bot.domain.catalog.schema import GROUP_ID, ServiceConfig
from bot.domain.enums import HookStage, Strategy, hook_stages_of

__all__ = [
    "CachedMembership",
    "Membership",
    "MembershipUnavailable",
    "Verdict",
    "check_approvals",
    "check_strategy",
    "is_member",
    "may_approve",
    "may_deploy",
    "may_lock",
    "may_rollback",
    "may_unlock",
]


class Membership(Protocol):
    """The user ids in a Slack user group (the Slack layer backs it with `usergroups.users.list`)."""

    def __call__(self, group_id: str, /) -> frozenset[str]: ...


class MembershipUnavailable(Exception):
    """Slack could not say who is in a user group (and nothing usable was cached): decide nothing, say so."""

    def __init__(self, group_id: str) -> None:
        super().__init__(f"user group {group_id} could not be read from Slack")
        self.group_id = group_id


MEMBERSHIP_UNAVAILABLE = (
    "I couldn't check your user-group membership with Slack just now, so I did nothing. Try again in a minute."
)


@dataclass(frozen=True)
class Verdict:
    """A policy answer; a refusal names its rule (a stable audit code) and a one-line reason."""

    allowed: bool
    rule: str
    reason: str

    @classmethod
    def ok(cls) -> Verdict:
        """The allowing verdict."""
        return cls(True, "ok", "")

    @classmethod
    def refuse(cls, rule: str, reason: str) -> Verdict:
        """A refusal under `rule`."""
        return cls(False, rule, reason)


def is_member(principals: Iterable[str], user: str, membership: Membership) -> bool:
    """True when `user` is listed directly or belongs to a listed user group."""
    listed = tuple(principals)
    if user in listed:
        return True  # no Slack call when the user is named directly
    return any(user in membership(p) for p in listed if GROUP_ID.match(p))


def may_deploy(service: ServiceConfig, user: str, channel: str, membership: Membership) -> Verdict:
    """Deployers only, and only from the service's channels when it lists some."""
    if not is_member(service.deployers, user, membership):
        return Verdict.refuse("not_deployer", f"you are not one of `{service.key}`'s deployers")
    if service.channels and channel not in service.channels:
        where = ", ".join(f"<#{c}>" for c in service.channels)
        return Verdict.refuse("channel_not_allowed", f"`/deploy {service.key}` is only allowed in {where}")
    return Verdict.ok()


def may_approve(service: ServiceConfig, user: str, requester: str, membership: Membership) -> Verdict:
    """Approvers only; with four-eyes, never the person who requested the deployment."""
    if not is_member(service.approvers, user, membership):
        return Verdict.refuse("not_approver", f"you are not one of `{service.key}`'s approvers")
    if service.four_eyes and user == requester:
        return Verdict.refuse(
            "four_eyes", "four-eyes rule: you requested this deployment; another approver must approve it"
        )
    return Verdict.ok()


def may_rollback(service: ServiceConfig, user: str, channel: str, membership: Membership) -> Verdict:
    """Deployers, approvers or incident responders, from any channel."""
    # The channel allow-list is deliberately not applied: a rollback is the safe direction, and the person who
    # needs it is usually in an incident channel, not the deploy channel. `channel` stays in the signature so
    # the use case calls every check the same way (and the audit event records where it came from).
    del channel
    return _responder(service, user, membership, "roll it back")


def may_lock(service: ServiceConfig, user: str, membership: Membership) -> Verdict:
    """Deployers, approvers or incident responders may freeze a service."""
    return _responder(service, user, membership, "lock it")


def may_unlock(service: ServiceConfig, user: str, membership: Membership) -> Verdict:
    """Deployers, approvers or incident responders may lift a freeze."""
    return _responder(service, user, membership, "unlock it")


def _responder(service: ServiceConfig, user: str, membership: Membership, action: str) -> Verdict:
    principals = (*service.deployers, *service.approvers, *service.incident_responders)
    if is_member(principals, user, membership):
        return Verdict.ok()
    return Verdict.refuse(
        "not_responder", f"only `{service.key}`'s deployers, approvers or incident responders may {action}"
    )


def check_strategy(
    service: ServiceConfig, strategy: Strategy, approval_stages: Sequence[HookStage] | None = None
) -> Verdict:
    """Refuse a strategy that never passes a stage where the deployment needs an approval pause.

    A rolling update pauses only at RECONCILE_SERVICE, PRE_SCALE_UP and POST_SCALE_UP: it has no test traffic and
    no production traffic shift, so an approval there could never be asked for (inferred: AWS documents no stage
    list per strategy, see ROLLING_HOOK_STAGES).
    """
    stages = service.approval_stages if approval_stages is None else tuple(approval_stages)
    never = [s for s in stages if s not in hook_stages_of(strategy)]
    if never:
        names = ", ".join(s.value for s in never)
        return Verdict.refuse(
            "stage_not_passed",
            f"`{service.key}` needs approval at {names}, which a rolling update never passes (it shifts no test or "
            f"production traffic); bluegreen, canary and linear do. Try: `/deploy {service.key} bluegreen`",
        )
    return Verdict.ok()


def check_approvals(service: ServiceConfig, requested: Sequence[HookStage] | None) -> Verdict:
    """`approve=` may add pauses but never drop the catalog's, and a pause needs someone able to approve it."""
    if requested is None:
        return Verdict.ok()
    missing = [s for s in service.approval_stages if s not in requested]
    if missing:
        # Otherwise any deployer could skip the approvals (and the four-eyes rule) with `approve=none`.
        names = ", ".join(s.value for s in missing)
        return Verdict.refuse(
            "approval_required",
            f"`{service.key}` requires approval at {names}; `approve=` can add stages, not remove these",
        )
    if requested and not service.approvers:
        return Verdict.refuse("no_approvers", f"`{service.key}` names no approvers, so nobody could approve a pause")
    return Verdict.ok()


@dataclass
class _Entry:
    members: frozenset[str]
    fetched_at: datetime


class CachedMembership:
    """A Membership that remembers each group for `ttl`, and serves the last good copy (up to `stale_for`) while
    Slack fails; with nothing cached it raises MembershipUnavailable (fail closed). `invalidate` drops a group, so
    a member removed in Slack loses the right at once, even while Slack is failing."""

    def __init__(
        self,
        fetch: Callable[[str], Iterable[str]],
        ttl: timedelta,
        clock: Callable[[], datetime],
        stale_for: timedelta = timedelta(hours=1),
    ) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._stale_for = stale_for
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        # Listeners run on a worker pool; the lock guards the dict, not the fetch (a rare double fetch is cheaper
        # than serialising every Slack call).
        self._lock = threading.Lock()

    def __call__(self, group_id: str, /) -> frozenset[str]:
        """The group's members, fetched again once the cached copy is `ttl` old."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(group_id)
        # A clock that went backwards makes the age negative: refetch rather than trust the entry indefinitely.
        age = now - entry.fetched_at if entry is not None else None
        if entry is not None and age is not None and timedelta(0) <= age < self._ttl:
            return entry.members
        try:
            members = frozenset(self._fetch(group_id))
        except Exception as exc:
            if entry is not None and age is not None and timedelta(0) <= age < self._stale_for:
                return entry.members  # Slack is failing: the last good answer, still young enough
            raise MembershipUnavailable(group_id) from exc
        with self._lock:
            self._entries[group_id] = _Entry(members, now)
        return members

    def invalidate(self, group_id: str | None = None) -> None:
        """Forget one group (or all), e.g. on a `subteam_members_changed` event."""
        with self._lock:
            if group_id is None:
                self._entries.clear()
            else:
                self._entries.pop(group_id, None)
