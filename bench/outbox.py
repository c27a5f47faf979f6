"""`python -m bench.outbox [--url URL]`: the notifier's own cost per message, at a 20 k-row backlog over 200 channels.

The outbox is seeded as a busy afternoon leaves it: 1,000 deployments in 200 channels, every root message posted,
20 thread replies each waiting (20,000 rows), plus a root edit per deployment. The sender drains it with pacing off
(`post_interval=0`) into a Slack client whose transport answers at once (no network, no server): everything the
bot does per message — claim, render from the database, build the request, record — is counted, Slack's time is
not. Prints ms of bot time per message sent. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import pstats
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.request import Request

from sqlalchemy import Engine, insert, text
from sqlalchemy.orm import Session, sessionmaker

from bot.db import migrate
from bot.db.sessions import make_engine, session_factory
from bot.domain.catalog.loader import Catalog, load_catalog
from bot.domain.enums import DeploymentStatus, EventKind, OutboxKind, OutboxState, Strategy
from bot.slack.metrics import MeteredWebClient
from bot.slack.sender import OutboxSender
from models import Deployment, DeploymentEvent, Outbox

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


SERVER = """
import json, sys, itertools
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = itertools.count(1)
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keeps the connection open for the next call, as Slack does
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            sent = json.loads(body or b"{}")
        except ValueError:
            sent = {}
        ts = sent.get("ts") or "1764590400.%06d" % next(count)
        out = json.dumps({"ok": True, "channel": sent.get("channel"), "ts": ts, "message_ts": ts}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
if len(sys.argv) > 2:  # --https: the certificate and key
    import ssl
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = tls.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def answering_server(https: bool = False) -> Iterator[str]:
    """A Web API on loopback, in its own process, that answers ok at once: the client's HTTP work is the bot's.

    With `https` it serves TLS with a throw-away self-signed certificate (made by the `openssl` command), which the
    bot's client trusts as real Slack's is trusted: the system's CA bundle plus that certificate (SSL_CERT_FILE).
    """
    with tempfile.TemporaryDirectory() as tmp, _trusting(Path(tmp)) if https else nullcontext(()) as tls:
        cmd = [sys.executable, "-c", SERVER, *tls]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)  # noqa: S603 - ours
        try:
            assert proc.stdout is not None
            yield f"{'https' if https else 'http'}://127.0.0.1:{proc.stdout.readline().strip()}/api/"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextmanager
def _trusting(tmp: Path) -> Iterator[tuple[str, str]]:
    """A self-signed certificate for 127.0.0.1 (cert, key), trusted by this process's default SSL contexts."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    args = ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
    args += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: S603, S607 - fixed arguments
    bundle = tmp / "bundle.pem"
    system = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")
    bundle.write_bytes((system.read_bytes() if system.exists() else b"") + cert.read_bytes())
    before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(bundle)
    try:
        yield str(cert), str(key)
    finally:
        if before is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = before


class InstantSlack(MeteredWebClient):
    """A WebClient whose transport answers ok at once: the request is built and encoded, nothing is sent."""

    _ts = itertools.count(1)

    def _perform_urllib_http_request_internal(self, url: str, req: Request) -> dict[str, Any]:
        sent = json.loads(req.data or b"{}") if isinstance(req.data, bytes) else {}
        ts = sent.get("ts") or f"1764590400.{next(self._ts):06d}"
        body = {"ok": True, "channel": sent.get("channel"), "ts": ts, "message_ts": ts}
        return {"status": 200, "headers": {}, "body": json.dumps(body)}


@contextmanager
def database(url: str | None) -> Iterator[Engine]:
    """A migrated, empty database: a temporary SQLite file, or a throw-away PostgreSQL schema."""
    if url is None:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite:///{tmp}/bench.sqlite")
            migrate.upgrade(engine)
            yield engine
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in url else "?"
    engine = make_engine(f"{url}{sep}options=-csearch_path%3D{schema}")
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(sessions: sessionmaker[Session], channels: int, per_channel: int, replies: int) -> int:
    """Deployments with their roots posted, `replies` waiting replies each and one root edit; returns rows queued."""
    deps = [
        {
            "service_key": f"bench-{i:04d}",
            "cluster": "bench",
            "service": f"bench-{i:04d}",
            "region": "us-east-1",
            "strategy": Strategy.CANARY,
            "canary_percent": 10.0,
            "approval_stages": [],
            "status": DeploymentStatus.IN_PROGRESS,
            "requested_by": "U0ALICE",
            "channel_id": f"CBENCH{i % channels:04d}",
            "root_ts": f"1764500000.{i:06d}",
            "tracked": {},
            "created_at": T0,
            "started_at": T0,
            "updated_at": T0,
        }
        for i in range(channels * per_channel)
    ]
    with sessions.begin() as s:
        ids = list(s.scalars(insert(Deployment).returning(Deployment.id), deps))
        events = [
            {
                "deployment_id": d,
                "service_key": f"bench-{n:04d}",
                "key": f"STARTED:{k}",
                "kind": EventKind.STARTED,
                "stage": "PRODUCTION_TRAFFIC_SHIFT",
                "detail": {"stage": "PRODUCTION_TRAFFIC_SHIFT"},
                "at": T0,
            }
            for n, d in enumerate(ids)
            for k in range(replies)
        ]
        event_ids = list(s.scalars(insert(DeploymentEvent).returning(DeploymentEvent.id), events))
        rows: list[dict[str, Any]] = []
        for n, d in enumerate(ids):
            channel = str(deps[n]["channel_id"])
            rows.append(_row(f"dep:{d}:root", d, channel, OutboxKind.POST, False, {"render": "root"}, OutboxState.SENT))
            for k in range(replies):
                event_id = event_ids[n * replies + k]
                payload = {"render": "event", "event_id": event_id}
                rows.append(_row(f"dep:{d}:event:{event_id}", d, channel, OutboxKind.POST, True, payload))
            rows.append(_row(f"dep:{d}:root-update:1", d, channel, OutboxKind.UPDATE_ROOT, False, {"render": "root"}))
        # Queue order as the reconciler leaves it: passes interleave the deployments.
        rows.sort(key=lambda r: (r["state"] != OutboxState.SENT, r["created_at"], r["idempotency_key"]))
        s.execute(insert(Outbox), rows)
    return sum(1 for r in rows if r["state"] is OutboxState.PENDING)


def _row(
    key: str,
    dep: int,
    channel: str,
    kind: OutboxKind,
    in_thread: bool,
    payload: dict[str, Any],
    state: OutboxState = OutboxState.PENDING,
) -> dict[str, Any]:
    n = int(key.rsplit(":", 1)[-1]) if key[-1].isdigit() else 0
    at = T0 + timedelta(milliseconds=n)
    return {
        "idempotency_key": key,
        "deployment_id": dep,
        "kind": kind,
        "channel_id": channel,
        "in_thread": in_thread,
        "payload": payload,
        "state": state,
        "attempts": 0,
        "not_before": at,
        "created_at": at,
    }


def measure(
    url: str | None, seconds: float, profile: bool, catalog: Catalog, api: str | None, lanes: int = 8
) -> tuple[int, float, float, int]:
    """(messages sent, wall ms per message, bot CPU ms per message, rows queued) for one backend."""
    with database(url) as engine:
        sessions = session_factory(engine)
        queued = seed(sessions, channels=200, per_channel=5, replies=20)
        kind = MeteredWebClient if api else InstantSlack
        base = api or "https://slack.invalid/api/"  # never reached without --http: the transport answers itself
        client = kind(token="xoxb-bench", base_url=base, timeout=10, retry_handlers=[])  # noqa: S106 - not a token
        sender = OutboxSender(
            sessions, client, catalog, owner="bench", post_interval=0, update_interval=0, batch=200, lanes=lanes
        )
        profiler = cProfile.Profile() if profile else None
        sent, started, cpu = 0, time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        while time.perf_counter() - started < seconds:
            sent += sender.drain_once()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        return sent, wall * 1000 / max(1, sent), cpu * 1000 / max(1, sent), queued


def main() -> int:
    """Print the figure for SQLite, and for PostgreSQL when --url is given."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="a PostgreSQL URL (a throw-away schema is made and dropped)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--http", action="store_true", help="send over loopback HTTP to a server in another process")
    parser.add_argument("--https", action="store_true", help="the same over TLS, verified like real Slack's")
    parser.add_argument("--lanes", default="8", help="the sender's lanes; comma-separated to compare (e.g. 1,8)")
    args = parser.parse_args()
    catalog = load_catalog(Path(__file__).resolve().parents[1] / "services.example.yml")
    for name, url in (("sqlite", None), ("postgresql", args.url)):
        if name == "postgresql" and url is None:
            continue
        for lanes in (int(n) for n in args.lanes.split(",")):
            with answering_server(args.https) if args.http or args.https else nullcontext(None) as api:
                sent, ms, cpu, queued = measure(url, args.seconds, args.profile, catalog, api, lanes)
            how = "loopback HTTPS" if args.https else "loopback HTTP" if args.http else "no HTTP"
            print(
                f"{name}, lanes={lanes}: {queued} rows over 200 channels, {how}: {sent} sent in {args.seconds:.0f} s; "
                f"per message {ms:.2f} ms wall, {cpu:.2f} ms CPU of the bot process"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
