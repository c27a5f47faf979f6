"""Writing many rows of a versioned ORM class at once, each only at the version it was read at."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Table, bindparam, inspect, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from models import Base


def write_versioned(session: Session, objects: Sequence[Base]) -> None:
    """Write the changed attributes of loaded objects of one versioned class in one executemany, version-checked.

    `UPDATE … SET <changed>, version = version + 1 WHERE id = :id AND version = :read`: one statement per call,
    not one per row as the ORM's flush writes rows whose changed columns differ. Each object ends as the flush
    would leave it (written, version bumped, nothing pending). If any row's version moved on since it was read,
    the matched total falls short and StaleDataError is raised, as the flush would: the caller rolls back.
    """
    if not objects:
        return
    mapper = inspect(type(objects[0]))
    table = cast(Table, mapper.local_table)
    version = mapper.version_id_col
    if version is None or len(mapper.primary_key) != 1:
        raise TypeError(f"{mapper.class_.__name__} is not versioned with a one-column primary key")
    key, pk = str(version.key), str(mapper.primary_key[0].key)
    # Columns the flush fills on every UPDATE (updated_at's Python-side onupdate) are filled here too, per row
    # unless that object set them.
    filled = {c.key for c in table.columns if c.onupdate is not None}
    changes = [_set(o) for o in objects]
    every = filled.union(*changes)
    columns = [p.key for p in mapper.column_attrs if p.key not in (key, pk) and p.key in every]
    params = [_params(table, o, set_, pk, key, columns, filled) for o, set_ in zip(objects, changes, strict=True)]
    stmt = (
        update(table)
        .where(table.c[pk] == bindparam("w_id"), table.c[key] == bindparam("w_version"))
        .values({c: bindparam(f"w_{c}", type_=table.c[c].type) for c in columns} | {key: table.c[key] + 1})
    )
    matched = cast("CursorResult[Any]", session.connection().execute(stmt, params)).rowcount
    if matched != len(objects):  # both drivers sum an executemany's rowcount (sqlite3; psycopg 3)
        raise StaleDataError(f"{table.name}: {len(objects) - matched} of {len(objects)} rows changed since read")
    for obj, p in zip(objects, params, strict=True):
        for c in columns:
            set_committed_value(obj, c, p[f"w_{c}"])
        set_committed_value(obj, key, p["w_version"] + 1)


def _set(obj: Base) -> set[str]:
    """The attributes set on `obj` since it was loaded (a value set equal to the old one counts: writing it
    again is harmless, and this is a set difference where the ORM's history is a comparison per attribute)."""
    state = inspect(obj)
    return set(state.dict).difference(state.unmodified)


def _params(
    table: Table, obj: Base, set_: set[str], pk: str, key: str, columns: list[str], filled: set[str]
) -> dict[str, Any]:
    """One row's parameters: its values of `columns`, its id and the version it was read at."""
    values = {
        f"w_{c}": table.c[c].onupdate.arg(None) if c in filled and c not in set_ else getattr(obj, c)  # type: ignore[union-attr]
        for c in columns
    }
    return values | {"w_id": getattr(obj, pk), "w_version": getattr(obj, key)}
