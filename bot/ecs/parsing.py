"""botocore's parsing of ECS's answers, without doing it again for a service deployment ECS answered the same.

A reconcile pass describes every live deployment (50 DescribeServiceDeployments calls for 1,000), and most of them
are answered exactly as the pass before: waiting for an approval, baking. botocore walks each answer's JSON against
the model (a Python call per field, a tz-aware datetime per timestamp through dateutil) and we then build a
`Snapshot` from it: most of a pass with nothing new. Parsing is a pure function of the JSON and the model, so a
deployment whose JSON equals the one parsed last time gets that parse and that `Snapshot` back; any difference (a
task count, a hook's status, a timestamp) is parsed afresh. Parsed answers are shared, so they are read, never
changed (the gateway only reads them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any

from botocore.parsers import JSONParser, ResponseParserFactory
from botocore.utils import parse_timestamp

from bot.domain.snapshot import Snapshot, snapshot_from_api

MEMO_SIZE = 20_000  # service deployments remembered (least recently described dropped first)
_MEMO_SHAPES = frozenset({"ServiceDeployment"})  # DescribeServiceDeployments' items


def utc_timestamp(value: Any) -> datetime:
    """ECS's epoch seconds as an aware UTC datetime; anything else as botocore parses it.

    botocore's default gives the same instant in the local zone through dateutil (~40 µs a timestamp, ten of them
    per deployment); the gateway converts to UTC anyway (`bot.domain.snapshot.timestamp`).
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    parsed: datetime = parse_timestamp(value)
    return parsed


class _Entry:
    __slots__ = ("parsed", "raw", "snapshot")

    def __init__(self, raw: dict[str, Any], parsed: dict[str, Any]) -> None:
        self.raw, self.parsed = raw, parsed
        self.snapshot: Snapshot | None = None


class AnswerMemo:
    """The last answer for each service deployment, by ARN: its JSON, botocore's parse of it, and its Snapshot."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def parsed(self, arn: str, raw: dict[str, Any]) -> dict[str, Any] | None:
        """botocore's parse of `raw` when it equals the JSON last parsed for `arn`, else None."""
        with self._lock:
            entry = self._entries.get(arn)
            if entry is None or entry.raw != raw:
                return None
            self._entries.move_to_end(arn)
            return entry.parsed

    def remember(self, arn: str, raw: dict[str, Any], parsed: dict[str, Any]) -> None:
        """Keep `parsed` as the parse of `raw` for `arn` (dropping the least recently described past the size)."""
        with self._lock:
            self._entries[arn] = _Entry(raw, parsed)
            self._entries.move_to_end(arn)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def snapshot(self, parsed: dict[str, Any]) -> Snapshot:
        """`snapshot_from_api(parsed)`, built once per parse remembered here."""
        arn = parsed.get("serviceDeploymentArn")
        with self._lock:
            entry = self._entries.get(arn) if isinstance(arn, str) else None
            if entry is not None and entry.parsed is parsed and entry.snapshot is not None:
                return entry.snapshot
        snapshot = snapshot_from_api(parsed)
        if entry is not None and entry.parsed is parsed:
            entry.snapshot = snapshot
        return snapshot


class _MemoJSONParser(JSONParser):
    """botocore's JSON-protocol parser, taking a remembered parse for a service deployment answered the same."""

    def __init__(self, memo: AnswerMemo, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._memo = memo

    def _handle_structure(self, shape: Any, value: Any) -> Any:
        arn = value.get("serviceDeploymentArn") if shape.name in _MEMO_SHAPES and isinstance(value, dict) else None
        if not isinstance(arn, str):
            return super()._handle_structure(shape, value)  # type: ignore[misc]  # botocore's stubs omit it
        parsed = self._memo.parsed(arn, value)
        if parsed is None:
            parsed = super()._handle_structure(shape, value)  # type: ignore[misc]
            self._memo.remember(arn, value, parsed)
        return parsed


class ParserFactory(ResponseParserFactory):
    """botocore's parser factory (a session component) whose JSON parsers share `memo` and parse epochs to UTC."""

    def __init__(self, memo: AnswerMemo) -> None:
        super().__init__()
        self.memo = memo
        self.set_parser_defaults(timestamp_parser=utc_timestamp)

    def create_parser(self, protocol_name: str) -> Any:
        """A parser for `protocol_name` (botocore makes one per response)."""
        if protocol_name == "json":
            return _MemoJSONParser(self.memo, **self._defaults)  # type: ignore[attr-defined]  # botocore's own
        return super().create_parser(protocol_name)
