"""Figures a scenario reports: one JSON line per run into $RELIABILITY_FIGURES (`make soak` sets it), and the
RELIABILITY.md table rendered from them (`python -m tests.reliability.figures FILE`), which fails (exit 1, naming
the row) when a run lost, duplicated or applied something twice, answered an ack in 3 s or more, or none was recorded."""

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
MUST_BE_ZERO = ("lost", "duplicated", "applied_twice")
ACK_LIMIT = 3.0  # Slack's: an unanswered request fails in the person's client


def record(scenario: str, **figures: Any) -> None:
    """Append one scenario's figures (no-op unless RELIABILITY_FIGURES names a file)."""
    target = os.environ.get("RELIABILITY_FIGURES")
    if target:
        with Path(target).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"scenario": scenario, **figures}) + "\n")


def table(lines: list[dict[str, Any]]) -> str:
    """The markdown table, one row per recorded run, by scenario then backend (workers finish in any order)."""
    rows = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for line in sorted(lines, key=lambda x: (str(x.get("scenario", "")), str(x.get("backend", "")))):
        cells = []
        for column in COLUMNS:
            value = line.get(column, "–")
            cells.append(f"{value:.3f}" if isinstance(value, float) else str(value))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def problems(lines: list[dict[str, Any]]) -> list[str]:
    """What is wrong with the recorded runs, one line per fault naming its row; [] when every row holds."""
    if not lines:
        return ["no figures were recorded"]
    found = []
    for line in lines:
        name = f"{line.get('scenario', '?')} [{line.get('backend', '?')}]"
        for column in MUST_BE_ZERO:
            value = line.get(column, 0)  # absent: the scenario has nothing of that kind (shown "–")
            if not isinstance(value, int | float) or isinstance(value, bool) or value != 0:
                found.append(f"{name}: {column} = {value!r}, must be 0")
        ack = line.get("max_ack_s")
        if ack is not None and (not isinstance(ack, int | float) or isinstance(ack, bool) or ack >= ACK_LIMIT):
            found.append(f"{name}: max_ack_s = {ack!r}, must be under {ACK_LIMIT:g} s")
    return found


def read(path: Path) -> list[dict[str, Any]]:
    """The recorded runs of a figures file (a missing file: none)."""
    if not path.is_file():
        return []
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
    if not all(isinstance(line, dict) for line in lines):
        raise ValueError("every line must be one JSON object")
    return lines


def main(argv: list[str]) -> int:
    """Print the table; 1 (with the rows at fault on stderr) unless every recorded run holds."""
    path = Path(argv[0]) if argv else Path("reliability-figures.jsonl")
    try:
        lines = read(path)
    except (OSError, ValueError) as exc:  # unreadable, or a line that is not JSON
        print(f"{path}: cannot read the figures: {exc}", file=sys.stderr)
        return 1
    if lines:
        print(table(lines))
    found = problems(lines)
    for problem in found:
        print(f"FAILED {path}: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
