"""Ingest queries: existing keys in bulk, batched inserts, error rows."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from db.models import (
    Image,
    IngestError,
    Report,
    Study,
    utcnow,
)
from db.queries._common import chunks as _chunks

__all__ = [
    "BatchWritten",
    "add_ingest_errors",
    "find_image_keys",
    "find_studies_with_report",
    "find_study_ids",
    "insert_ingest_rows",
    "lock_ingest",
    "resolve_ingest_errors",
    "write_ingest_batch",
]

# --- ingest ---------------------------------------------------------------------------------

# Ingest writes in bulk: a batch of a few hundred studies is one transaction, keys are looked up
# once per batch, and rows go in through Core ``insert`` (the ORM unit of work would cost more
# than parsing does at Open-i's 4k reports).
#
# Two ingests may run into one store at once. Each batch's write takes the store's ingest lock
# first (SQLite: BEGIN IMMEDIATE, the write lock, waited for up to the busy timeout; PostgreSQL:
# a transaction-level advisory lock), then looks again at what is stored, so a study, image or
# report that the other run stored since this batch was planned is skipped, not duplicated. The
# inserts also say ON CONFLICT DO NOTHING on the unique keys, in case a writer skips the lock.

INGEST_LOCK_ID = 0x6D656466_696E6773 >> 1  # "medfings": pg advisory lock key (int64)


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


def insert_ingest_rows(model: type, rows: list[dict], *, session: Session,
                       unique: str | None = None) -> None:
    """Bulk insert of Study / Image / Report rows (plain dicts of column values); with
    ``unique``, rows whose value of that unique column is stored already are skipped."""
    if not rows:
        return
    conn = session.connection()
    dialect = {"sqlite": sqlite, "postgresql": postgresql}.get(conn.dialect.name)
    if unique and dialect is not None:
        conn.execute(dialect.insert(model).on_conflict_do_nothing(index_elements=[unique]), rows)
    else:
        conn.execute(sa_insert(model), rows)


def lock_ingest(*, session: Session) -> None:
    """Hold the store's ingest lock until the session's transaction ends; call it before the
    transaction's first statement. Waits while another ingest holds it."""
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        if not conn.connection.dbapi_connection.in_transaction:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({INGEST_LOCK_ID})")


@dataclass(frozen=True)
class BatchWritten:
    study_keys: set[str]  # studies that got any new row (Study, Image or Report)
    images: int  # new Image rows
    reports: int  # new Report rows


def write_ingest_batch(studies: list[dict], images: dict[str, list[dict]],
                       reports: dict[str, dict], *, session: Session) -> BatchWritten:
    """Store one batch under the ingest lock: ``studies`` are Study rows, ``images`` and
    ``reports`` Image / Report rows (without study_id) by study_key. Whatever is stored already,
    by an earlier run or one running beside this one, is skipped."""
    lock_ingest(session=session)
    ids = find_study_ids([s["study_key"] for s in studies] + list(images) + list(reports),
                         session=session)
    new_studies = [s for s in studies if s["study_key"] not in ids]
    insert_ingest_rows(Study, new_studies, session=session, unique="study_key")
    ids.update(find_study_ids([s["study_key"] for s in new_studies], session=session))
    written = {s["study_key"] for s in new_studies}
    known = find_image_keys([r["image_key"] for rows in images.values() for r in rows],
                            session=session)
    image_rows = []
    for key, rows in images.items():
        for row in rows:
            if row["image_key"] not in known:
                known.add(row["image_key"])
                image_rows.append({**row, "study_id": ids[key]})
                written.add(key)
    insert_ingest_rows(Image, image_rows, session=session, unique="image_key")
    with_report = find_studies_with_report([ids[k] for k in reports], session=session)
    report_rows = [{**row, "study_id": ids[k]} for k, row in reports.items()
                   if ids[k] not in with_report]
    written |= {k for k in reports if ids[k] not in with_report}
    insert_ingest_rows(Report, report_rows, session=session)
    return BatchWritten(written, len(image_rows), len(report_rows))


def add_ingest_errors(rows: list[dict], *, session: Session) -> list[dict]:
    """Record errors, skipping any (dataset, item, message) recorded and not resolved: a rerun
    over the same bad file adds nothing, one over a file that broke again after it was fixed
    records it anew. Returns the rows that were new."""
    seen: set[tuple[str, str, str]] = set()
    for chunk in _chunks(sorted({r["item"] for r in rows})):
        seen.update(session.exec(select(IngestError.dataset, IngestError.item,
                                        IngestError.message)
                                 .where(IngestError.item.in_(chunk),
                                        IngestError.resolved_at.is_(None))).all())
    new = []
    for row in rows:
        key = (row["dataset"], row["item"], row["message"])
        if key not in seen:
            seen.add(key)
            new.append(row)
    insert_ingest_rows(IngestError, new, session=session)
    return new


def resolve_ingest_errors(study_keys: list[str], *, session: Session) -> int:
    """Mark the open errors about these studies resolved (a run stored them whole); returns how
    many. Resolved rows stay in the table, out of the Data page's list."""
    n, now = 0, utcnow()
    for chunk in _chunks(sorted(set(study_keys))):
        n += session.exec(sa_update(IngestError)
                          .where(IngestError.subject_key.in_(chunk),
                                 IngestError.resolved_at.is_(None))
                          .values(resolved_at=now)).rowcount
    return n
