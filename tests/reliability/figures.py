"""Figures a scenario reports: one JSON line per run into $RELIABILITY_FIGURES (`make soak` sets it), and the
RELIABILITY.md table rendered from them (`python -m tests.reliability.figures FILE`)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

COLUMNS = (
    "scenario",
    "backend",
    "deployments",
    "requests",
    "faults",
    "lost",
    "duplicated",
    "applied_twice",
    "max_ack_s",
    "delivery_delay_s",
    "command",
)


def record(scenario: str, **figures: Any) -> None:
    """Append one scenario's figures (no-op unless RELIABILITY_FIGURES names a file)."""
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"scenario": scenario, **figures}) + "\n")


def table(lines: list[dict[str, Any]]) -> str:
    """The markdown table, one row per recorded run."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for line in lines:
        cells = []
        for column in COLUMNS:
            value = line.get(column, "–")
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


if __name__ == "__main__":
    path = Path(sys.argv[1])
    print(table([json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]))
