"""Ingest queries: existing keys in bulk, batched inserts, error rows."""

from __future__ import annotations

from sqlalchemy import insert as sa_insert
from sqlmodel import Session, select

from db.models import (
    Image,
    IngestError,
    Report,
    Study,
)
from db.queries._common import chunks as _chunks

__all__ = [
    "add_ingest_errors",
    "find_image_keys",
    "find_studies_with_report",
    "find_study_ids",
    "insert_ingest_rows",
]

# --- ingest ---------------------------------------------------------------------------------

# Ingest writes in bulk: a batch of a few hundred studies is one transaction, keys are looked up
# once per batch, and rows go in through Core ``insert`` (the ORM unit of work would cost more
# than parsing does at Open-i's 4k reports).


def find_study_ids(keys: list[str], *, session: Session) -> dict[str, int]:
    """study_key -> Study.id for the keys already stored."""
    out: dict[str, int] = {}
    for chunk in _chunks(list(keys)):
        out.update(session.exec(select(Study.study_key, Study.id)
                                .where(Study.study_key.in_(chunk))).all())
    return out


def find_image_keys(keys: list[str], *, session: Session) -> set[str]:
    out: set[str] = set()
    for chunk in _chunks(list(keys)):
        out.update(session.exec(select(Image.image_key).where(Image.image_key.in_(chunk))).all())
    return out


def find_studies_with_report(study_ids: list[int], *, session: Session) -> set[int]:
    out: set[int] = set()
    for chunk in _chunks(list(study_ids)):
        out.update(session.exec(select(Report.study_id)
                                .where(Report.study_id.in_(chunk))).all())
    return out


def insert_ingest_rows(model: type, rows: list[dict], *, session: Session) -> None:
    """Bulk insert of Study / Image / Report rows (plain dicts of column values)."""
    if rows:
        session.connection().execute(sa_insert(model), rows)


def add_ingest_errors(rows: list[dict], *, session: Session) -> list[dict]:
    """Record errors, skipping any (dataset, item, message) already recorded: a rerun over the
    same bad file adds nothing. Returns the rows that were new."""
    seen: set[tuple[str, str, str]] = set()
    for chunk in _chunks(sorted({r["item"] for r in rows})):
        seen.update(session.exec(select(IngestError.dataset, IngestError.item,
                                        IngestError.message)
                                 .where(IngestError.item.in_(chunk))).all())
    new = []
    for row in rows:
        key = (row["dataset"], row["item"], row["message"])
        if key not in seen:
            seen.add(key)
            new.append(row)
    insert_ingest_rows(IngestError, new, session=session)
    return new
