"""Forged, stale, replayed and malformed signatures: 401, and nothing reaches a listener, the database or Slack."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from sandbox.slack.server import DEFAULT_SIGNING_SECRET
from tests.e2e_support import World, awaiting, wait_for
from tests.reliability import mutate
from tests.reliability.conftest import backend, post, side_effects, sign, signed
from tests.reliability.figures import record

BODY = urlencode(mutate.command("catalog canary 10%", user="U0ALICE")).encode()  # would start a deployment
FORM = "application/x-www-form-urlencoded"


def _v0(secret: str, stamp: str, body: bytes) -> str:
    return "v0=" + hmac.new(secret.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()


def _cases() -> list[tuple[str, dict[str, str], bytes]]:
    now = str(int(time.time()))
    good = sign(DEFAULT_SIGNING_SECRET, BODY)
    stale = str(int(time.time()) - 301)
    return [
        ("no headers", {}, BODY),
        ("wrong secret", sign("not-the-secret", BODY), BODY),
        ("stale by 301 s", {"X-Slack-Request-Timestamp": stale, "X-Slack-Signature": _v0(DEFAULT_SIGNING_SECRET, stale, BODY)}, BODY),
        ("from the future", {"X-Slack-Request-Timestamp": str(int(now) + 400), "X-Slack-Signature": _v0(DEFAULT_SIGNING_SECRET, str(int(now) + 400), BODY)}, BODY),
        ("body changed after signing", good, BODY + b"&text=x"),
        ("signature of another timestamp", {**good, "X-Slack-Request-Timestamp": str(int(now) - 1)}, BODY),
        ("non-numeric timestamp", {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": good["X-Slack-Signature"]}, BODY),
        ("negative timestamp", {"X-Slack-Request-Timestamp": "-1", "X-Slack-Signature": good["X-Slack-Signature"]}, BODY),
        ("v1 scheme", {**good, "X-Slack-Signature": good["X-Slack-Signature"].replace("v0=", "v1=")}, BODY),
        ("truncated signature", {**good, "X-Slack-Signature": good["X-Slack-Signature"][:-2]}, BODY),
        ("upper-case hex", {**good, "X-Slack-Signature": "v0=" + good["X-Slack-Signature"][3:].upper()}, BODY),
        ("empty signature", {**good, "X-Slack-Signature": ""}, BODY),
        ("huge timestamp", {"X-Slack-Request-Timestamp": "9" * 40, "X-Slack-Signature": good["X-Slack-Signature"]}, BODY),
        ("fractional timestamp", {"X-Slack-Request-Timestamp": now + ".5", "X-Slack-Signature": good["X-Slack-Signature"]}, BODY),
    ]  # fmt: skip


def test_forged_stale_and_malformed_signatures_are_401_with_no_outbound_call(world: World, database_url: str) -> None:
    before, slack_calls = side_effects(world), len(world.slack.store.calls_for(None))
    for name, headers, body in _cases():
        reply = post(f"{world.bot.url}/slack/events", body, FORM, headers)
        assert reply.status == 401, (name, reply.status, reply.body)
        assert b"Traceback" not in reply.body
    assert side_effects(world) == before
    time.sleep(0.3)  # anything a listener had queued would have called Slack by now
    assert len(world.slack.store.calls_for(None)) == slack_calls  # not even an ephemeral
    # The same request correctly signed is served (the cases above fail only for their signatures).
    assert signed(world, BODY, FORM).status == 200
    record(
        "forged / stale / malformed signatures",
        backend=backend(database_url),
        requests=len(_cases()),
        faults=f"{len(_cases())}×401",
        lost=0,
        duplicated=0,
        command="make soak (test_signatures.py)",
    )


def test_a_replayed_approval_within_the_window_decides_once(world: World, database_url: str) -> None:
    # A replay inside Slack's 5-minute window is indistinguishable from Slack retrying: it must be harmless.
    behind = time.time() - world.ecs.now().timestamp()
    if behind > 0:
        world.ecs.advance(behind)  # the module's ECS clock started minutes ago
    world.command("U0ALICE", "catalog canary 10%")
    dep = world.started()
    hook = world.run_until(dep, awaiting).awaiting[0].hook_id
    click = mutate.click(dep=dep, user="U0BOB")
    click["actions"][0]["value"] = f"{dep}|{hook}"
    raw = urlencode({"payload": json.dumps(click)}).encode()
    headers = sign(DEFAULT_SIGNING_SECRET, raw)
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda _: post(f"{world.bot.url}/slack/events", raw, FORM, headers), range(4)))
    assert [r.status for r in replies] == [200] * 4
    wait_for(lambda: world.ecs.calls("ContinueServiceDeployment"), what="the approval reaching ECS")
    world.told("U0BOB", "", count=4)  # every copy answered
    assert len(world.ecs.calls("ContinueServiceDeployment")) == 1
    assert side_effects(world)["decisions"] == 1
    record(
        "replayed approval (4 copies, one signature, concurrently)",
        backend=backend(database_url),
        deployments=1,
        requests=4,
        applied_twice=0,
        max_ack_s=max(r.seconds for r in replies),
        command="make soak (test_signatures.py)",
    )
