"""Problems found in a configuration file, each with its file and line (for `deploybot check`)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import yaml


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a configuration, located by file and 1-based line (0 = whole file)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass
class ProblemSink:
    """Collects problems while walking a YAML node tree, so every problem is reported at once."""

    filename: str
    problems: list[Problem] = field(default_factory=list)
    _keys: dict[int, yaml.Node] = field(default_factory=dict, repr=False)

    def add(self, node: yaml.Node | None, message: str) -> None:
        """Record a problem at `node`'s line."""
        line = node.start_mark.line + 1 if node is not None else 0
        self.problems.append(Problem(self.filename, line, message))

    def mapping(self, node: yaml.Node | None, allowed: Iterable[str] | None, where: str) -> dict[str, yaml.Node]:
        """The keys of a mapping node; unknown (when `allowed` is given) and duplicate keys are problems."""
        if not isinstance(node, yaml.MappingNode):
            self.add(node, f"{where} must be a mapping of `key: value` lines")
            return {}
        allowed_keys = list(allowed) if allowed is not None else None
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in result:
                self.add(key_node, f"`{key}` appears twice in {where}")
                continue
            if allowed_keys is not None and key not in allowed_keys:
                self.add(key_node, f"unknown key `{key}` in {where}{suggest(key, allowed_keys)}")
                continue
            result[key] = value_node
            self._keys[id(value_node)] = key_node
        return result

    def key_of(self, value_node: yaml.Node) -> yaml.Node:
        """The key node of a mapping value seen by `mapping` (problems about a whole entry point at its name)."""
        return self._keys.get(id(value_node), value_node)


def scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node, typed as YAML 1.1 safe-loading types it."""
    return yaml.SafeLoader("").construct_object(node, deep=True)


def suggest(word: str, choices: Iterable[str]) -> str:
    """A "; did you mean `x`?" suffix when a choice is close to `word`, else empty."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return f"; did you mean `{close[0]}`?" if close else ""
