"""Helpers shared by the query modules (private to ``db.queries``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import update as sa_update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session

from db.models import ReviewEvent, utcnow

IN_CHUNK = 500  # keys per IN (...) list, well under SQLite's bound-parameter limit

# INSERT ... ON CONFLICT DO NOTHING, per dialect (both stores we support have it). Not a SAVEPOINT
# around a plain INSERT: under pysqlite a SAVEPOINT that opens the transaction commits it on
# RELEASE, which would split the caller's transaction in two.
_INSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}


def chunks(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def insert_or_skip(model, rows: list[dict], *, session: Session, returning=None) -> list:
    """Insert ``rows`` (one statement); the ``returning`` column (default: the id) of those
    inserted. A row whose unique key is already held is skipped, and so is one a concurrent
    transaction is inserting, once that commits."""
    if not rows:
        return []
    stmt = (_INSERT[session.get_bind().dialect.name](model).values(rows)
            .on_conflict_do_nothing().returning(model.id if returning is None else returning))
    return list(session.exec(stmt).scalars())


def locked_update(model, entity_id: int, version: int, values: dict, *, session: Session) -> bool:
    """UPDATE ... WHERE id = :id AND version = :v; False when another write got there first."""
    result = session.exec(sa_update(model).where(model.id == entity_id, model.version == version)
                          .values(**values, version=version + 1, updated_at=utcnow()))
    return result.rowcount == 1


def add_event(reviewer_id, entity, entity_id, action, before, after, *, session) -> None:
    session.add(ReviewEvent(reviewer_id=reviewer_id, entity=entity, entity_id=entity_id,
                            action=action, before_json=json.dumps(before) if before else None,
                            after_json=json.dumps(after) if after is not None else None))
