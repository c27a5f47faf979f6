"""`deploybot check` and `deploybot migrate`: validate configuration and prepare the database."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bot.config import Settings, load_settings
from bot.db.sessions import DatabaseUnavailable, check_connection, make_engine
from bot.domain.catalog.loader import Catalog, CatalogError, load_catalog
from bot.domain.problems import Problem

Printer = Callable[[str], None]


@dataclass
class Preflight:
    """The result of validating settings, catalog and database before anything starts."""

    settings: Settings | None = None
    catalog: Catalog | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing stops the bot from starting."""
        return not self.problems and self.settings is not None and self.catalog is not None


def preflight(catalog_path: str | None = None, *, need_slack: bool = False) -> Preflight:
    """Validate settings, the catalog and database connectivity, collecting every problem."""
    result = Preflight()
    settings, problems = load_settings()
    result.problems += problems
    if settings is None:
        return result
    result.settings = settings
    if need_slack:
        result.problems += settings.slack_problems()
    path = Path(catalog_path) if catalog_path else settings.catalog_path
    try:
        result.catalog = load_catalog(path)
        result.notes.append(f"catalog {path}: {len(result.catalog)} services ({', '.join(result.catalog.names())})")
    except CatalogError as exc:
        result.problems += exc.problems
    try:
        engine = make_engine(settings.database_url_value)
        check_connection(engine)
        result.notes.append(f"database {engine.url.render_as_string(hide_password=True)}: reachable, {_schema(engine)}")
    except DatabaseUnavailable as exc:
        result.problems.append(Problem("DATABASE_URL", 0, str(exc)))
    return result


def _schema(engine: Engine) -> str:
    from bot.db import migrate

    current, head = migrate.current_revision(engine), migrate.head_revision()
    if current == head:
        return f"schema at {head} (current)"
    return f"schema at {current or 'nothing yet'}; `deploybot migrate` (or `deploybot run`) upgrades it to {head}"


def report(result: Preflight, out: Printer = print) -> int:
    """Print every problem (or the notes when all is well) and return the exit code."""
    for problem in sorted(result.problems):
        out(str(problem))
    if result.problems:
        count = len(result.problems)
        out(f"{count} problem{'s' if count != 1 else ''} found")
        return 1
    for note in result.notes:
        out(f"ok: {note}")
    return 0


def run_check(catalog_path: str | None = None, *, offline: bool = False) -> int:
    """`deploybot check`: validate everything; with credentials, also reach Slack and ECS."""
    result = preflight(catalog_path)
    if result.ok and not offline and result.settings and result.catalog:
        from bot.connectivity import online_problems

        problems, notes = online_problems(result.settings, result.catalog)
        result.problems += problems
        result.notes += notes
    return report(result)


def run_migrate(revision: str = "head") -> int:
    """`deploybot migrate`: upgrade the database (serialised across replicas on PostgreSQL)."""
    from bot.db import migrate

    settings, problems = load_settings()
    if settings is None:
        return report(Preflight(problems=problems))
    try:
        engine = make_engine(settings.database_url_value)
        check_connection(engine)
    except DatabaseUnavailable as exc:
        print(f"DATABASE_URL: {exc}", file=sys.stderr)
        return 1
    migrate.upgrade(engine, revision)
    print(f"database at revision {migrate.current_revision(engine)}")
    return 0
