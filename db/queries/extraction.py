"""Extraction queries: reports still to do, per-report writes, and the LLM cache."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, union
from sqlalchemy import delete as sa_delete
from sqlalchemy import insert as sa_insert
from sqlalchemy import update as sa_update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from db.evidence import check_span
from db.models import (
    ExtractionError,
    Finding,
    FindingStatus,
    LLMCall,
    Report,
    ReportExtraction,
    ReviewEvent,
    utcnow,
)
from db.queries._common import chunks as _chunks
from db.queries._common import insert_or_skip

__all__ = [
    "add_extraction_error",
    "add_llm_call",
    "count_reports_left_for_review",
    "get_llm_responses",
    "get_report_texts",
    "list_report_ids_to_extract",
    "replace_proposed_findings",
    "store_proposed_findings",
    "StoredFindings",
]

# --- extraction -----------------------------------------------------------------------------

# Used by pipeline.extract.run: which reports still need the current extractor version, and the
# writes of a batch of reports (findings, or error rows) in the caller's transaction.
#
# Write once, never over a review. Two extract runs of one version may race each other and a
# reviewer (each run lists its reports before it stores any). So a report's proposed findings of
# one version are stored once: the write first *claims* the report by inserting its
# ReportExtraction marker (unique per report and version; a run that finds it there skips the
# report), and only then, holding that claim, checks that no reviewer has started on the report
# (any finding not "proposed", or any review event on one) and writes. Claim first, check second:
# the check then runs inside the write transaction (SQLite: under its write lock), so a reviewer's
# write is either seen by it or comes after the findings exist.


@dataclass(frozen=True)
class StoredFindings:
    """What ``store_proposed_findings`` did with one report."""

    stored: int  # findings written (0 when skipped, or for a normal report)
    skipped: str | None = None  # "done" (another run stored this version) | "under review"


def _to_extract(extractor: str, version: str, force: bool):
    """Ids of the reports a run of (extractor, version) would extract, before the review rule."""
    stmt = select(Report.id)
    if not force:
        done = (select(ReportExtraction.report_id)
                .where(ReportExtraction.extractor == extractor,
                       ReportExtraction.extractor_version == version))
        stmt = stmt.where(Report.id.not_in(done))
    return stmt


def _under_review():
    """Ids of the reports a reviewer has started on."""
    decided = select(Finding.report_id).where(Finding.status != FindingStatus.proposed)
    evented = select(Finding.report_id).join(ReviewEvent, and_(
        ReviewEvent.entity == "finding", ReviewEvent.entity_id == Finding.id))
    return union(decided, evented)


def list_report_ids_to_extract(extractor: str, version: str, *, session: Session,
                               limit: int | None = None, force: bool = False) -> list[int]:
    """Ids of reports not yet done by (extractor, version), by id; every report if ``force``.

    "Done" is the ReportExtraction marker, so a report with no findings (a normal study) is not
    redone on every run, while a report whose extraction failed is retried. A report a reviewer
    has started on is never listed, ``force`` or not: it gets no second set of findings.
    """
    stmt = (_to_extract(extractor, version, force).where(Report.id.not_in(_under_review()))
            .order_by(Report.id))
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.exec(stmt))


def count_reports_left_for_review(extractor: str, version: str, *, session: Session,
                                  force: bool = False) -> int:
    """Reports a run would extract but leaves alone because a reviewer has started on them."""
    ids = _to_extract(extractor, version, force).where(Report.id.in_(_under_review()))
    return session.exec(select(func.count()).select_from(ids.subquery())).one()


def get_report_texts(report_ids: list[int], *, session: Session) -> dict[int, str]:
    """Report.text by id (looked up in chunks)."""
    out: dict[int, str] = {}
    for chunk in _chunks(report_ids):
        for rid, text in session.exec(select(Report.id, Report.text).where(Report.id.in_(chunk))):
            out[rid] = text
    return out


def _under_review_among(report_ids: list[int], *, session: Session) -> set[int]:
    """The ids among ``report_ids`` a reviewer has started on (indexed look-ups, in chunks)."""
    out: set[int] = set()
    for chunk in _chunks(report_ids):
        decided = select(Finding.report_id).where(Finding.report_id.in_(chunk),
                                                  Finding.status != FindingStatus.proposed)
        evented = select(Finding.report_id).join(ReviewEvent, and_(
            ReviewEvent.entity == "finding", ReviewEvent.entity_id == Finding.id)).where(
            Finding.report_id.in_(chunk))
        out |= set(session.exec(union(decided, evented)).scalars())
    return out


def _claim(counts: dict[int, int], extractor: str, version: str, *, force: bool,
           session: Session) -> dict[int, str]:
    """Take reports for this version: report id -> "new" (our marker, inserted with its finding
    count) or "retaken" (``force``: an earlier run's marker, touched, which locks it so that two
    forced runs take turns). A report another run holds is left out."""
    marker = (ReportExtraction.extractor == extractor,
              ReportExtraction.extractor_version == version)
    claimed: dict[int, str] = {}
    if force:
        for chunk in _chunks(list(counts)):
            touched = session.exec(sa_update(ReportExtraction).where(
                *marker, ReportExtraction.report_id.in_(chunk))
                .values(n_findings=ReportExtraction.n_findings)
                .returning(ReportExtraction.report_id)).scalars()
            claimed |= dict.fromkeys(touched, "retaken")
    now = utcnow()
    fresh = [{"report_id": rid, "extractor": extractor, "extractor_version": version,
              "n_findings": n, "created_at": now} for rid, n in counts.items() if rid not in claimed]
    new = insert_or_skip(ReportExtraction, fresh, returning=ReportExtraction.report_id,
                         session=session)
    return claimed | dict.fromkeys(new, "new")


def store_proposed_findings(extractor: str, version: str, findings: dict[int, list[dict]], *,
                            session: Session, force: bool = False) -> dict[int, StoredFindings]:
    """Store each report's findings of (extractor, version) as ``proposed``, once; what was done
    with each report, by id.

    A report is skipped (nothing written) when another run has stored this version for it
    ("done"; with ``force`` a rerun replaces its own proposed set instead) or a reviewer has
    started on it ("under review"); see "Write once, never over a review" above. Every row's
    evidence must be its verbatim report slice (``db.evidence.check_span``), else ValueError.
    A few statements per call, whatever the number of reports.
    """
    texts = get_report_texts(list(findings), session=session)
    for rid, rows in findings.items():
        if bad := [r["category"] for r in rows if not check_span(
                texts[rid], r.get("evidence_start"), r.get("evidence_end"), r.get("evidence_text"))]:
            raise ValueError(f"report {rid}: evidence of {', '.join(bad)} is not a verbatim "
                             "slice of the report")
    counts = {rid: len(rows) for rid, rows in findings.items()}
    claimed = _claim(counts, extractor, version, force=force, session=session)
    reviewed = _under_review_among(list(claimed), session=session)
    write = [rid for rid in claimed if rid not in reviewed]
    marker = (ReportExtraction.extractor == extractor,
              ReportExtraction.extractor_version == version)
    for chunk in _chunks([rid for rid in reviewed if claimed[rid] == "new"]):
        session.exec(sa_delete(ReportExtraction).where(  # give back the claims this call made
            *marker, ReportExtraction.report_id.in_(chunk)))
    for chunk in _chunks(write):
        session.exec(sa_delete(Finding).where(
            Finding.report_id.in_(chunk), Finding.extractor == extractor,
            Finding.extractor_version == version, Finding.status == FindingStatus.proposed))
    retaken = [rid for rid in write if claimed[rid] == "retaken"]
    for chunk in _chunks(retaken):  # a forced rerun's marker: this run's count and time
        session.exec(sa_delete(ReportExtraction).where(
            *marker, ReportExtraction.report_id.in_(chunk)))
    now = utcnow()
    if retaken:
        session.exec(sa_insert(ReportExtraction), params=[
            {"report_id": rid, "extractor": extractor, "extractor_version": version,
             "n_findings": counts[rid], "created_at": now} for rid in retaken])
    if rows := [{**row, "report_id": rid, "extractor": extractor, "extractor_version": version,
                 "status": FindingStatus.proposed, "version": 1, "created_at": now,
                 "updated_at": now} for rid in write for row in findings[rid]]:
        session.exec(sa_insert(Finding), params=rows)  # one multi-row INSERT: ORM objects cost ~5x more
    return {rid: StoredFindings(counts[rid]) if rid in write else
            StoredFindings(0, "under review" if rid in reviewed else "done") for rid in findings}


def replace_proposed_findings(report_id: int, extractor: str, version: str, rows: list[dict], *,
                              session: Session, force: bool = False) -> StoredFindings:
    """``store_proposed_findings`` for one report."""
    return store_proposed_findings(extractor, version, {report_id: rows}, session=session,
                                   force=force)[report_id]


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
