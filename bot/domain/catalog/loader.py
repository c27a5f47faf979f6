"""The service catalog: which ECS services the bot may deploy, and the rules for each (YAML)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bot.domain.catalog.schema import ServiceConfig, build_service
from bot.domain.enums import Verb
from bot.domain.problems import Problem, ProblemSink

__all__ = ["Catalog", "CatalogError", "Problem", "ServiceConfig", "load_catalog", "parse_catalog"]

TOP_LEVEL_KEYS = ("defaults", "services")
SERVICE_KEY = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# `/deploy status` must mean the command, so no service may be called like one.
RESERVED_NAMES = frozenset(verb.value for verb in Verb)


class CatalogError(Exception):
    """The catalog cannot be used; `problems` lists every reason with its line."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Catalog:
    """Every deployable service, by the key people type after `/deploy`."""

    services: Mapping[str, ServiceConfig]
    path: str = "<memory>"
    _order: tuple[str, ...] = field(default=(), repr=False)

    def get(self, key: str) -> ServiceConfig | None:
        """The service named `key` (case-insensitive), or None."""
        return self.services.get(key.lower())

    def names(self) -> list[str]:
        """Service keys in catalog order."""
        return list(self._order or self.services)

    def closest(self, key: str, n: int = 3) -> list[str]:
        """Service keys that look like `key`, best first, for "did you mean" answers."""
        return difflib.get_close_matches(key.lower(), self.names(), n=n, cutoff=0.5)

    def __iter__(self) -> Iterator[ServiceConfig]:
        return iter(self.services[k] for k in self.names())

    def __len__(self) -> int:
        return len(self.services)


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate the catalog file; raise CatalogError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError([Problem(str(path), 0, f"cannot read the catalog: {exc.strerror}")]) from exc
    catalog, problems = parse_catalog(text, str(path))
    if problems or catalog is None:
        raise CatalogError(problems)
    return catalog


def parse_catalog(text: str, filename: str = "<catalog>") -> tuple[Catalog | None, list[Problem]]:
    """Parse catalog YAML; return the catalog (None if unusable) and every problem found."""
    sink = ProblemSink(filename)
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else 0
        return None, [Problem(filename, line, f"YAML syntax error: {exc.problem}")]
    if not isinstance(root, yaml.MappingNode):
        sink.add(root, "the catalog must be a mapping with a `services:` key")
        return None, sink.problems
    top = sink.mapping(root, TOP_LEVEL_KEYS, "top level")
    defaults_node = top.get("defaults")
    defaults = sink.mapping(defaults_node, None, "defaults") if defaults_node is not None else {}
    services_node = top.get("services")
    if services_node is None:
        sink.add(root, "missing `services:`: list at least one service")
        return None, sink.problems
    entries = sink.mapping(services_node, None, "services")
    if not entries and isinstance(services_node, yaml.MappingNode):
        sink.add(services_node, "`services:` is empty: list at least one service")
    services: dict[str, ServiceConfig] = {}
    for key, node in entries.items():
        service = _service(sink, key, node, defaults)
        if service is not None:
            services[key.lower()] = service
    if sink.problems:
        return None, sink.problems
    return Catalog(services, filename, tuple(services)), []


def _service(sink: ProblemSink, key: str, node: yaml.Node, defaults: Mapping[str, yaml.Node]) -> ServiceConfig | None:
    if not SERVICE_KEY.match(key):
        message = f"service name `{key}` must be lower-case letters, digits, `-` or `_` (like `catalog`)"
        sink.add(sink.key_of(node), message)
        return None
    if key in RESERVED_NAMES:
        sink.add(sink.key_of(node), f"service name `{key}` is a /deploy command; rename the service's key")
        return None
    fields = sink.mapping(node, None, f"service `{key}`")
    if not isinstance(node, yaml.MappingNode):
        return None
    merged = {**defaults, **fields}
    return build_service(sink, key, sink.key_of(node), merged)


def _compose(text: str) -> yaml.Node:
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        raise yaml.MarkedYAMLError(problem="the file is empty", problem_mark=None)
    return node
