"""`python -m tests.reliability.figures FILE` fails `make soak` (exit 1, naming the row) unless every run held."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.reliability import figures

GOOD = {"scenario": "crash", "backend": "sqlite", "lost": 0, "duplicated": 0, "applied_twice": 0, "max_ack_s": 0.2}


@pytest.mark.parametrize(
    ("content", "code", "named"),
    [
        ([GOOD], 0, None),
        ([GOOD, {**GOOD, "backend": "postgresql"}], 0, None),
        ([{"scenario": "signatures", "backend": "sqlite", "lost": 0, "duplicated": 0}], 0, None),  # "–" columns
        ([{**GOOD, "max_ack_s": 2.999}], 0, None),
        ([{**GOOD, "lost": 1}], 1, "crash [sqlite]: lost = 1"),
        ([GOOD, {**GOOD, "backend": "postgresql", "duplicated": 2}], 1, "crash [postgresql]: duplicated = 2"),
        ([{**GOOD, "applied_twice": 1}], 1, "crash [sqlite]: applied_twice = 1"),
        ([{**GOOD, "lost": "?"}], 1, "crash [sqlite]: lost = '?'"),  # not a count: not a pass either
        ([{**GOOD, "max_ack_s": 3.0}], 1, "crash [sqlite]: max_ack_s = 3.0"),  # Slack's limit is < 3 s
        ([{**GOOD, "max_ack_s": 7.5}], 1, "crash [sqlite]: max_ack_s = 7.5"),
        ([], 1, "no figures were recorded"),  # an empty file: the scenarios recorded nothing
        ("\n\n", 1, "no figures were recorded"),
        (None, 1, "no figures were recorded"),  # no file at all
        ("{not json\n", 1, "cannot read the figures"),
        ("[1, 2]\n", 1, "cannot read the figures"),
    ],
)
def test_the_figures_pass_only_when_every_run_held(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: list[dict[str, Any]] | str | None,
    code: int,
    named: str | None,
) -> None:
    path = tmp_path / "figures.jsonl"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    elif content is not None:
        path.write_text("".join(json.dumps(line) + "\n" for line in content), encoding="utf-8")
    assert figures.main([str(path)]) == code
    out, err = capsys.readouterr()
    if named is None:
        assert err == "" and out.count("\n| crash") + out.count("\n| signatures") == len(content or [])
    else:
        assert named in err
        assert err.count("\n") == 1  # the one row at fault, not the good ones


def test_make_soak_stops_on_a_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "figures.jsonl"
    path.write_text(json.dumps({**GOOD, "lost": 1}) + "\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.figures", str(path)], check=False, capture_output=True, text=True
    )
    assert done.returncode == 1 and "crash [sqlite]: lost = 1, must be 0" in done.stderr
