"""The use cases: everything a Slack handler may ask of the engine, behind one object."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from bot.domain import policy
from bot.domain.catalog.loader import Catalog
from bot.domain.enums import AnswerKind
from bot.domain.grammar import parser as grammar
from bot.domain.narration import AccessOf
from bot.domain.text import escape
from bot.ecs.gateway import EcsGateway
from bot.engine.answers import Actor, Answer, refused
from bot.engine.decisions import Decisions
from bot.engine.deployments import Deployments
from bot.engine.reconciler import Reconciler
from bot.logs import get_logger
from models import utcnow

log = get_logger(__name__)


class UseCases:
    """Deployments, decisions and the reconciler, wired to one database, catalog and ECS gateway."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        catalog: Catalog,
        ecs: EcsGateway,
        membership: policy.Membership,
        *,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        channels: AccessOf | None = None,
        poll_interval: timedelta = timedelta(seconds=5),
        lease: timedelta = timedelta(seconds=60),
    ) -> None:
        self.catalog = catalog
        self.deployments = Deployments(sessions, catalog, ecs, membership, clock)
        if channels is not None:
            self.deployments.channels = channels
        owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.deployments.owner = owner
        self.decisions = Decisions(self.deployments, owner, poll_interval)
        self.reconciler = Reconciler(self.decisions, owner=owner, interval=poll_interval, lease=lease)

    def handle(self, actor: Actor, command: grammar.Command) -> Answer:
        """Run a parsed `/deploy` command for `actor` (OpenForm is the Slack layer's job)."""
        try:
            return self._handle(actor, command)
        except policy.MembershipUnavailable as exc:
            # Slack could not say who is in a group: nothing was decided, and the attempt is on record.
            service = getattr(command, "service", None) or "-"
            verdict = policy.Verdict.refuse("membership_unavailable", policy.MEMBERSHIP_UNAVAILABLE)
            answer = self.deployments.refuse(actor, str(service), type(command).__name__.lower(), verdict)
            log.warning("%s: %s", actor.user_id, exc)
            return Answer(answer.text, ok=False)

    def _handle(self, actor: Actor, command: grammar.Command) -> Answer:
        d, dec = self.deployments, self.decisions
        match command:
            case grammar.Deploy():
                return d.request_deploy(actor, command)
            case grammar.Approve(service=key):
                return dec.approve_by_service(actor, key)
            case grammar.Rollback(service=key, reason=reason):
                return dec.rollback_by_service(actor, key, reason)
            case grammar.Lock(service=key, reason=reason):
                return self._with_service(key, lambda s: dec.lock(actor, s, reason))
            case grammar.Unlock(service=key):
                return self._with_service(key, lambda s: dec.unlock(actor, s))
            case grammar.Status(service=key):
                report = d.status_report(key)
                return Answer(f"{len(report.active)} deployment(s)", kind=AnswerKind.STATUS, report=report)
            case grammar.History(service=key, limit=limit):
                views = tuple(d.history(key, limit))
                return Answer(f"{len(views)} deployment(s) of `{key}`", kind=AnswerKind.HISTORY, views=views)
            case grammar.Help():
                return Answer(grammar.HELP_TEXT, kind=AnswerKind.HELP)
        return refused("That command opens the deployment form in Slack.")

    def _with_service(self, key: str, action: Callable[..., Answer]) -> Answer:
        service = self.catalog.get(key)
        return action(service) if service else refused(f"Unknown service `{escape(key)}`.")
