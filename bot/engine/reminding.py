"""Reminders for pauses waiting for a person: which are due and not stored yet, for a whole batch at once."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import select

from bot.domain.catalog.loader import Catalog
from bot.domain.durations import pause_minutes
from bot.domain.enums import DeploymentStatus, EventKind
from bot.domain.machine.state import Event
from bot.domain.readmodels import awaiting_hooks
from bot.domain.reminders import due_reminders
from models import DeploymentEvent


@dataclass(frozen=True)
class Waiting:
    """What reminders read of a deployment."""

    id: int
    service_key: str
    status: DeploymentStatus
    tracked: dict[str, Any]

    @classmethod
    def of(cls, row: Any) -> Waiting:
        """From an ORM deployment or a row with these columns."""
        return cls(row.id, row.service_key, row.status, row.tracked)


Read = Callable[[Any], Iterable[Any]]  # runs a query (in the caller's transaction, or in one of its own)


class Reminders:
    """Due reminders per deployment; remembers when pauses began and which reminders are stored (facts that stay)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._facts: dict[tuple[int, str], datetime] = {}  # (deployment, event key) → when it was stored

    def due(self, read: Read, waiting: Sequence[Waiting], now: datetime) -> dict[int, list[Event]]:
        """The reminders due now and not stored yet; a query only for what this object does not know yet."""
        hooks = [
            (w, service, hook)
            for w in waiting
            if w.status is DeploymentStatus.AWAITING_APPROVAL and (service := self.catalog.get(w.service_key))
            for hook in awaiting_hooks(w.tracked)
        ]
        if not hooks:
            return {}
        began = self._known(read, [(w.id, _began_key(h.hook_id)) for w, _, h in hooks])
        due: dict[int, list[Event]] = defaultdict(list)
        for w, service, hook in hooks:
            # The pause lasts what we asked ECS for: its length, measured on our clock from when we saw it begin.
            stored = w.tracked.get("approval_timeout")
            length = timedelta(minutes=pause_minutes(timedelta(seconds=stored))) if isinstance(stored, int) else None
            since = began.get((w.id, _began_key(hook.hook_id))) or now
            due[w.id] += [
                Event(EventKind.REMINDER, r.key, stage=hook.stage, detail=r.detail)
                for r in due_reminders(hook, since, service.reminder_interval, now, length)
            ]
        told = self._known(read, [(dep_id, e.key) for dep_id, events in due.items() for e in events])
        return {dep_id: [e for e in events if (dep_id, e.key) not in told] for dep_id, events in due.items()}

    def forget(self, keep: Container[int]) -> None:
        """Drop what is known of deployments not in `keep`."""
        self._facts = {k: v for k, v in self._facts.items() if k[0] in keep}

    def _known(self, read: Read, wanted: Sequence[tuple[int, str]]) -> dict[tuple[int, str], datetime]:
        """Which of `wanted` events are stored, and when: from memory, else one query for the rest."""
        unknown = [w for w in wanted if w not in self._facts]
        if unknown:
            stmt = select(DeploymentEvent.deployment_id, DeploymentEvent.key, DeploymentEvent.at).where(
                DeploymentEvent.deployment_id.in_(sorted({i for i, _ in unknown})),
                DeploymentEvent.key.in_(sorted({k for _, k in unknown})),
            )
            for dep_id, key, at in read(stmt):
                self._facts[(cast(int, dep_id), key)] = at
        return {w: at for w in wanted if (at := self._facts.get(w)) is not None}


def _began_key(hook_id: str) -> str:
    return f"hook:{hook_id}:AWAITING_ACTION"
