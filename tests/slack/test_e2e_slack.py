"""End to end against the strict stand-in: hostile and malformed requests, concurrency under ECS throttling,
Slack failing on the approver-group lookup, user-group changes (issue 11 items 1, 3 and 6; issue 13 items 3, 5)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from bot.domain.enums import ActorSource, DecisionKind, DeploymentStatus, EventKind, TimeoutAction
from bot.slack.blocks import APPROVE_ACTION, ROLLBACK_ACTION
from models import Decision, Deployment, DeploymentEvent, utcnow
from sandbox.slack import workspace as ws
from sandbox.slack.delivery import sign
from sandbox.slack.server import DEFAULT_SIGNING_SECRET, SlackSandboxHandle
from tests.e2e_support import World, awaiting, http_json, running_world

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Trap:
    """An HTTP server standing for an attacker's URL: it records every request that reaches it."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        trap = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                trap.hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


@pytest.fixture
def trap() -> Iterator[Trap]:
    t = Trap()
    yield t
    t.server.shutdown()
    t.server.server_close()


def command_body(text: str, response_url: str, user: str = ws.ALICE) -> bytes:
    fields = {
        "command": "/deploy",
        "text": text,
        "user_id": user,
        "channel_id": ws.DEPLOYS_CHANNEL,
        "team_id": ws.TEAM_ID,
        "trigger_id": "1.2.abc",
        "response_url": response_url,
    }
    return urlencode(fields).encode()


def nothing_happened(w: World, trap: Trap) -> None:
    time.sleep(0.3)  # what a listener would have done runs within this, on the worker pool
    assert trap.hits == []
    # Not even a DM: no outbound Slack call at all (the app's own auth.test at start-up is not the request's).
    assert [c["method"] for c in w.slack.store.calls_for(None)] in ([], ["auth.test"])
    with w.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 0
        assert session.scalar(select(func.count()).select_from(DeploymentEvent)) == 0
    assert w.ecs.calls("DescribeServices") == []


@pytest.mark.parametrize("stamp", ["abc", "", "1e9", "1700000000.5", "-1"])
def test_a_non_numeric_timestamp_is_401_and_causes_no_outbound_call(world: World, trap: Trap, stamp: str) -> None:
    body = command_body("status", trap.url)
    headers = {**FORM, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + "0" * 64}
    status, _ = http_json(f"{world.bot.url}/slack/events", raw=body, headers=headers)
    assert status == 401
    nothing_happened(world, trap)


def signed(body: bytes) -> dict[str, str]:
    """Slack's signature headers over raw bytes (slack_sdk's signer only takes UTF-8 text)."""
    stamp = str(int(time.time()))
    digest = hmac.new(DEFAULT_SIGNING_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256)
    return {**FORM, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": "v0=" + digest.hexdigest()}


MALFORMED = [
    ("payload=%7Bnot-json", FORM),
    ("payload=%5B1%2C2%5D", FORM),  # JSON, but not an object
    ("payload=" + json.dumps({"type": "block_actions", "actions": [{"action_id": APPROVE_ACTION}]}), FORM),  # no user
    ("payload=" + json.dumps({"type": "block_actions", "user": {"id": "U0BOB"}, "actions": "x"}), FORM),
    ("payload=" + json.dumps({"type": "view_submission", "user": {"id": "U0BOB"}, "view": {}}), FORM),
    ("command=%2Fdeploy&text=status&channel_id=C0DEPLOYS", FORM),  # no user_id
    ("command=%2Fdeploy&text=status&user_id=%3Cnot%3E&channel_id=C0DEPLOYS", FORM),
    ('{"type": "event_callback", "event": "x"}', {"Content-Type": "application/json"}),
    ("[1, 2]", {"Content-Type": "application/json"}),
    ("\xff\xfe", FORM),
    ("hello", {"Content-Type": "text/plain"}),
]


@pytest.mark.parametrize(("raw", "content_type"), MALFORMED)
def test_signed_but_malformed_bodies_are_400_with_no_side_effect(
    world: World, trap: Trap, raw: str, content_type: dict[str, str]
) -> None:
    body = raw.encode("latin-1")
    status, answer = http_json(f"{world.bot.url}/slack/events", raw=body, headers={**signed(body), **content_type})
    assert status == 400, answer
    assert answer["error"] == "bad request"
    nothing_happened(world, trap)


def test_the_same_malformed_body_unsigned_is_401(world: World, trap: Trap) -> None:
    body = b"payload=%7Bnot-json"
    status, _ = http_json(f"{world.bot.url}/slack/events", raw=body, headers=FORM)
    assert status == 401
    nothing_happened(world, trap)


def test_a_response_url_that_is_not_slacks_is_never_posted_to(world: World, trap: Trap) -> None:
    w = world
    body = command_body("status", trap.url)
    status, _ = http_json(f"{w.bot.url}/slack/events", raw=body, headers=signed(body))
    assert status == 200
    w.ephemeral_with(ws.ALICE, "deployment")  # answered, through the Web API instead
    assert trap.hits == []
    assert w.calls("chat.postEphemeral")


def test_100_concurrent_commands_and_clicks_while_ecs_throttles_are_all_acked_in_time(world: World) -> None:
    w = world
    dep = _deploy_to_approval(w)
    root_ts = w.root(dep)["ts"]
    w.ecs.post("fault", {"operation": "*", "code": "ThrottlingException", "rate": 1.0})
    jobs = [("command", ws.ALICE, "orders")] * 10 + [("command", ws.CAROL, "status")] * 45
    jobs += [("click", ws.DAVE, root_ts)] * 45  # Dave may not approve: each click is refused, after the ack

    def send(job: tuple[str, str, str]) -> tuple[float, dict[str, Any]]:
        started = time.monotonic()
        kind, user, arg = job
        result = w.command(user, arg) if kind == "command" else w.click(user, arg, APPROVE_ACTION)
        return time.monotonic() - started, result

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(send, jobs))
    assert [r["status"] for _, r in results] == [200] * len(jobs)
    assert [r["error"] for _, r in results] == [None] * len(jobs)
    assert max(t for t, _ in results) < 3.0
    # …and every one is answered later through its response_url.
    # ECS throttling is a delay: one deployment of orders is queued (never refused), the other nine find it there.
    w.told(ws.ALICE, "ECS is throttling; I'll start it as soon as it lets me", 1, timeout=120)
    w.told(ws.ALICE, "already has deployment", 9, timeout=120)
    w.told(ws.CAROL, "deployment", 45, timeout=60)
    w.told(ws.DAVE, "rule `not_approver`", 45, timeout=60)
    w.ecs.post("fault", {"operation": "*", "code": "ThrottlingException", "rate": 0})


def catch_up_ecs(w: World) -> None:
    """Move the frozen ECS clock up to real time: the module's sandbox started minutes ago, and the bot finds its
    new service deployment by creation time (ListServiceDeployments' createdAt filter, 30 s of skew allowed)."""
    behind = time.time() - w.ecs.now().timestamp()
    if behind > 0:
        w.ecs.advance(behind)


def _deploy_to_approval(w: World) -> int:
    catch_up_ecs(w)
    w.command(ws.ALICE, "catalog canary 10%")
    dep = w.started(timeout=60)  # a loaded CI machine: the deadline is generous, the condition exact
    w.run_until(dep, awaiting)
    return dep


def test_a_slack_429_on_the_approver_lookup_is_retried_and_the_click_recorded(world: World) -> None:
    w = world
    dep = _deploy_to_approval(w)
    w.slack.store.settings.scopes = w.slack.store.settings.scopes  # unchanged: usergroups:read granted
    fault = {"method": "usergroups.users.list", "status": 429, "retry_after": 1, "times": 2}
    w.control("settings", {"faults": [fault]})
    w.ctx.membership.invalidate()
    answer = w.click(ws.BOB, w.root(dep)["ts"], APPROVE_ACTION)
    assert answer["status"] == 200 and answer["error"] is None
    w.ephemeral_with(ws.BOB, "Approval sent", timeout=15)
    with w.ctx.sessions() as session:
        assert session.scalars(select(Decision.user_id).where(Decision.deployment_id == dep)).all() == [ws.BOB]
    calls = w.calls("usergroups.users.list")
    assert [c["status"] for c in calls][-3:] == [429, 429, 200]
    # Retry-After: 1 was honoured: each attempt came at least a second after the 429 before it.
    assert all(b["time"] - a["time"] >= 1.0 for a, b in zip(calls[-3:], calls[-2:], strict=False))


def _membership_refusals(w: World) -> list[DeploymentEvent]:
    with w.ctx.sessions() as session:
        events = session.scalars(select(DeploymentEvent).where(DeploymentEvent.kind == EventKind.REFUSED)).all()
    return [e for e in events if e.detail.get("rule") == "membership_unavailable"]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500, "times": -1},
        {"status": 503, "times": -1},
        {"status": 429, "retry_after": 30, "times": -1},  # longer than a person should wait: not waited for
    ],
)
def test_slack_down_on_the_approver_lookup_says_so_and_records_the_attempt(world: World, fault: dict[str, Any]) -> None:
    w = world
    dep = _deploy_to_approval(w)
    w.control("settings", {"faults": [{"method": "usergroups.users.list", **fault}]})
    w.ctx.membership.invalidate()  # nothing cached: nothing to fall back on
    answer = w.click(ws.BOB, w.root(dep)["ts"], APPROVE_ACTION)
    assert answer["status"] == 200 and answer["error"] is None  # the ack never waits for Slack's lookup
    w.ephemeral_with(ws.BOB, "couldn't check your user-group membership", timeout=15)
    assert w.ecs.calls("ContinueServiceDeployment") == []
    with w.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 0
    # The click is not lost: it is on record, as a refusal that names the reason and where it came from.
    [refusal] = _membership_refusals(w)
    assert (refusal.actor, refusal.detail["action"], refusal.detail["source"]) == (ws.BOB, "approve", "button")
    w.control("settings", {"faults": []})
    w.click(ws.BOB, w.root(dep)["ts"], APPROVE_ACTION)  # a minute later it just works
    w.ephemeral_with(ws.BOB, "Approval sent", timeout=15)


def test_a_roll_back_click_while_slack_is_down_is_answered_and_recorded(world: World) -> None:
    w = world
    dep = _deploy_to_approval(w)
    w.control("settings", {"faults": [{"method": "usergroups.users.list", "status": 500, "times": -1}]})
    w.ctx.membership.invalidate()
    w.click(ws.CAROL, w.root(dep)["ts"], ROLLBACK_ACTION)  # carol is a responder through the on-call group
    w.ephemeral_with(ws.CAROL, "couldn't check your user-group membership", timeout=15)
    assert w.ecs.calls("ContinueServiceDeployment") == [] and w.ecs.calls("StopServiceDeployment") == []
    [refusal] = _membership_refusals(w)
    assert (refusal.actor, refusal.detail["action"]) == (ws.CAROL, "rollback")


class LaterClock:
    """The bot's clock, moved ahead on demand (the membership cache ages by it)."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead


@pytest.fixture
def later(database_url: str, slack: SlackSandboxHandle, ecs_url: str) -> Iterator[tuple[World, LaterClock]]:
    clock = LaterClock()
    slack.store.reset()
    with running_world(database_url, slack, ecs_url, clock=clock) as w:
        w.ecs.post("reset")
        w.ecs.post("speed", {"speed": 0})
        yield w, clock


def test_slack_down_on_the_approver_lookup_falls_back_to_the_last_good_membership(
    later: tuple[World, LaterClock],
) -> None:
    w, clock = later
    dep = _deploy_to_approval(w)
    assert ws.BOB in w.ctx.membership(ws.APPROVERS_GROUP)  # a good copy, fetched now
    fetched = len(w.calls("usergroups.users.list"))
    clock.ahead = timedelta(minutes=20)  # past the cache's 5 minutes, within the hour a stale copy may serve
    w.control("settings", {"faults": [{"method": "usergroups.users.list", "status": 500, "times": -1}]})
    answer = w.click(ws.BOB, w.root(dep)["ts"], APPROVE_ACTION)
    assert answer["status"] == 200 and answer["error"] is None
    w.ephemeral_with(ws.BOB, "Approval sent", timeout=15)
    with w.ctx.sessions() as session:
        assert session.scalars(select(Decision.user_id).where(Decision.deployment_id == dep)).all() == [ws.BOB]
    assert len(w.ecs.calls("ContinueServiceDeployment")) == 1
    # Slack was asked again (and failed every attempt, within the bounds) before the stale copy was used.
    tried = w.calls("usergroups.users.list")[fetched:]
    assert len(tried) >= 2 and {c["status"] for c in tried} == {500}
    assert _membership_refusals(w) == []


def test_a_member_removed_from_the_group_loses_the_right_at_once(world: World) -> None:
    w = world
    dep = _deploy_to_approval(w)
    assert ws.BOB in w.ctx.membership(ws.APPROVERS_GROUP)  # cached for five minutes
    removed = ws.UserGroup(ws.APPROVERS_GROUP, "platform-approvers", "Platform approvers", (ws.CAROL,))
    original = ws.GROUPS_BY_ID[ws.APPROVERS_GROUP]
    ws.GROUPS_BY_ID[ws.APPROVERS_GROUP] = removed
    try:
        event = {"type": "subteam_members_changed", "subteam_id": ws.APPROVERS_GROUP, "team_id": ws.TEAM_ID,
                 "added_users": [], "removed_users": [ws.BOB], "removed_users_count": 1}  # fmt: skip
        envelope = {"type": "event_callback", "team_id": ws.TEAM_ID, "api_app_id": ws.APP_ID, "event": event,
                    "event_id": "Ev0SUBTEAM", "event_time": int(time.time())}  # fmt: skip
        raw = json.dumps(envelope).encode()
        headers = {"Content-Type": "application/json", **sign(DEFAULT_SIGNING_SECRET, raw)}
        assert http_json(f"{w.bot.url}/slack/events", raw=raw, headers=headers)[0] == 200
        w.click(ws.BOB, w.root(dep)["ts"], APPROVE_ACTION)
        w.ephemeral_with(ws.BOB, "rule `not_approver`")
    finally:
        ws.GROUPS_BY_ID[ws.APPROVERS_GROUP] = original
    assert w.ecs.calls("ContinueServiceDeployment") == []


# Pre-flight: the bot must be able to post where a deployment is narrated (issue 11, item 2) -------------------
def _nothing_started(w: World) -> None:
    with w.ctx.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Deployment)) == 0
    assert w.ecs.calls("DescribeServices") == [] and w.ecs.calls("UpdateService") == []


@pytest.mark.parametrize(
    ("channel", "words"),
    [
        (ws.HIDDEN_CHANNEL, "`/invite @DeployBot` to this channel"),  # private, the bot never invited
        (ws.PEOPLE_DM, "A DM is no place for a deployment"),  # a DM between Alice and Bob
        (ws.GROUP_DM, "`/invite @DeployBot`"),
    ],
)
def test_a_deployment_nobody_could_follow_is_never_started(world: World, channel: str, words: str) -> None:
    w = world
    answer = w.command(ws.ALICE, "orders", channel=channel)
    assert answer["status"] == 200
    told = w.ephemeral_with(ws.ALICE, "started nothing")
    assert words in told["text"] and told["channel"] == channel  # said where it was asked, via its response_url
    _nothing_started(w)


def test_a_hidden_channel_narrates_in_the_services_home_channel_and_says_so(world: World) -> None:
    w = world
    services = w.ctx.catalog.services
    assert isinstance(services, dict)
    original = services["orders"]
    services["orders"] = replace(original, channels=(ws.DEPLOYS_CHANNEL, ws.HIDDEN_CHANNEL))
    try:
        catch_up_ecs(w)
        w.command(ws.ALICE, "orders", channel=ws.HIDDEN_CHANNEL)
        dep = w.started()
        told = w.ephemeral_with(ws.ALICE, f"Deployment #{dep}")
        assert "so I'm narrating it in <#C0DEPLOYS>" in told["text"]
        assert w.view(dep).channel_id == ws.DEPLOYS_CHANNEL
        w.drain()
        assert w.root(dep)["ts"] and w.messages(ws.HIDDEN_CHANNEL) == []
    finally:
        services["orders"] = original


def test_an_approval_request_slack_refused_never_times_out_into_continue(world: World) -> None:
    w = world
    services = w.ctx.catalog.services
    assert isinstance(services, dict)
    original, channel = services["catalog"], ws.ALL_CHANNELS[ws.DEPLOYS_CHANNEL]
    services["catalog"] = replace(original, timeout_action=TimeoutAction.CONTINUE)
    try:
        catch_up_ecs(w)
        w.command(ws.ALICE, "catalog canary 10%")
        dep = w.started(timeout=60)
        w.drain()  # the root message is up
        ws.ALL_CHANNELS[ws.DEPLOYS_CHANNEL] = replace(channel, is_archived=True)  # …then the channel is archived
        w.run_until(dep, awaiting, limit=50)
        w.ctx.usecases.reconciler.reconcile_once()  # sees the approval request failed: rolls back, not CONTINUE
        assert [c["parameters"]["action"] for c in _continues(w)] == ["ROLLBACK"]
        done = w.run_until(dep, lambda v: not v.is_active)
    finally:
        services["catalog"], ws.ALL_CHANNELS[ws.DEPLOYS_CHANNEL] = original, channel
    assert done.status is DeploymentStatus.ROLLED_BACK
    with w.ctx.sessions() as session:
        decision = session.scalars(select(Decision).where(Decision.deployment_id == dep)).one()
    assert (decision.kind, decision.source) == (DecisionKind.ROLLBACK, ActorSource.SYSTEM)
    w.drain()
    assert any("couldn't show the approval request" in m["text"] for m in w.messages(ws.dm_channel_id(ws.ALICE)))


def _continues(w: World) -> list[dict[str, Any]]:
    return w.ecs.calls("ContinueServiceDeployment")
