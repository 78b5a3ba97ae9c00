"""Helpers shared by the query modules (private to ``db.queries``)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

IN_CHUNK = 500  # keys per IN (...) list, well under SQLite's bound-parameter limit

# INSERT ... ON CONFLICT DO NOTHING, per dialect (both stores we support have it). Not a SAVEPOINT
# around a plain INSERT: under pysqlite a SAVEPOINT that opens the transaction commits it on
# RELEASE, which would split the caller's transaction in two.
_INSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def chunks(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def insert_or_skip(model, values: dict, *, session: Session) -> int | None:
    """Insert one row; its id, or None (and nothing written) when a unique key already holds
    it. A concurrent insert of the same key is waited for, then skipped."""
    stmt = (_INSERT[session.get_bind().dialect.name](model).values(**values)
            .on_conflict_do_nothing().returning(model.id))
    return session.exec(stmt).scalar_one_or_none()
