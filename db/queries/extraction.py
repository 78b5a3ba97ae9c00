"""Extraction queries: reports still to do, per-report writes, and the LLM cache."""

from __future__ import annotations

from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from db.models import (
    ExtractionError,
    Finding,
    FindingStatus,
    LLMCall,
    Report,
    ReportExtraction,
    utcnow,
)
from db.queries._common import chunks as _chunks

# --- extraction -----------------------------------------------------------------------------

# Used by pipeline.extract.run: which reports still need the current extractor version, and the
# per-report write (findings, or an error row) in the caller's transaction.


def list_report_ids_to_extract(extractor: str, version: str, *, session: Session,
                               limit: int | None = None, force: bool = False) -> list[int]:
    """Ids of reports not yet done by (extractor, version), by id; every report if ``force``.

    "Done" is the ReportExtraction marker, so a report with no findings (a normal study) is not
    redone on every run, while a report whose extraction failed is retried.
    """
    stmt = select(Report.id).order_by(Report.id)
    if not force:
        done = (select(ReportExtraction.report_id)
                .where(ReportExtraction.extractor == extractor,
                       ReportExtraction.extractor_version == version))
        stmt = stmt.where(Report.id.not_in(done))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def get_report_texts(report_ids: list[int], *, session: Session) -> dict[int, str]:
    """Report.text by id (looked up in chunks)."""
    out: dict[int, str] = {}
    for chunk in _chunks(report_ids):
        for rid, text in session.exec(select(Report.id, Report.text).where(Report.id.in_(chunk))):
            out[rid] = text
    return out


def replace_proposed_findings(report_id: int, extractor: str, version: str, rows: list[dict], *,
                              session: Session) -> int:
    """Store one report's findings of (extractor, version) as ``proposed``.

    Earlier *proposed* findings of the same extractor version are replaced (a ``--force`` rerun);
    findings a reviewer has touched (any other status) are never deleted.
    """
    session.exec(sa_delete(Finding).where(
        Finding.report_id == report_id, Finding.extractor == extractor,
        Finding.extractor_version == version, Finding.status == FindingStatus.proposed))
    if rows:  # one multi-row INSERT: ORM objects cost ~5x more per finding
        now = utcnow()
        session.exec(sa_insert(Finding), params=[
            {**row, "report_id": report_id, "extractor": extractor, "extractor_version": version,
             "status": FindingStatus.proposed, "version": 1, "created_at": now, "updated_at": now}
            for row in rows])
    session.exec(sa_delete(ReportExtraction).where(
        ReportExtraction.report_id == report_id, ReportExtraction.extractor == extractor,
        ReportExtraction.extractor_version == version))
    session.add(ReportExtraction(report_id=report_id, extractor=extractor,
                                 extractor_version=version, n_findings=len(rows)))
    return len(rows)


def add_extraction_error(report_id: int, extractor: str, version: str, message: str, *,
                         session: Session) -> None:
    session.add(ExtractionError(report_id=report_id, extractor=extractor,
                                extractor_version=version, message=message))


# --- llm cache ------------------------------------------------------------------------------
# Response cache and usage ledger of pipeline.extract.llm.extractor, keyed by LLMCall.cache_key.


def get_llm_responses(cache_keys: list[str], *, session: Session) -> dict[str, LLMCall]:
    """Cached calls by key, for the keys that have one (looked up 500 at a time)."""
    found: dict[str, LLMCall] = {}
    for i in range(0, len(cache_keys), 500):
        chunk = cache_keys[i:i + 500]
        for row in session.exec(select(LLMCall).where(LLMCall.cache_key.in_(chunk))):
            found[row.cache_key] = row
    return found


def add_llm_call(call: LLMCall, *, session: Session) -> bool:
    """Store one call; False (and nothing changed) when its cache key is already stored."""
    try:
        with session.begin_nested():
            session.add(call)
    except IntegrityError:
        return False
    return True
