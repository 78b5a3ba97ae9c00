"""The extraction library: file mode (JSONL in, JSONL out) and DB mode (reports still to
extract -> proposed findings, written once per extractor version); usage in
``pipeline.extract.cli``."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from db import queries
from db.engine import session_scope
from pipeline.batching import batched
from pipeline.extract.findings import (
    ExtractedFinding,
    ExtractionResult,
    Extractor,
    evidence_is_verbatim,
)
from pipeline.settings import Settings

BATCH = 256  # reports handed to extract_batch at once (the LLM runs them concurrently)
COMMIT_EVERY = 64  # DB mode: results per transaction at most ...
COMMIT_SECONDS = 2.0  # ... and seconds between commits at most (a crash loses no more)
REJECTED_PREFIX = "rejected finding: "


def make_extractor(name: str, *, settings: Settings, db_url: str | None = None,
                   concurrency: int | None = None, model: str | None = None,
                   base_url: str | None = None) -> Extractor:
    """The extractor called ``name`` ("rules" | "llm")."""
    if name == "rules":
        from pipeline.extract.rules.engine import RuleExtractor
        return RuleExtractor()
    if name == "llm":
        from pipeline.extract.llm.extractor import (
            make_llm_extractor,  # lazy: the rules path needs no HTTP client
        )
        return make_llm_extractor(settings=settings, db_url=db_url, concurrency=concurrency,
                                  model=model, base_url=base_url)
    raise ValueError(f"--extractor: unknown extractor {name!r} (rules | llm)")


@dataclass
class ExtractSummary:
    reports: int = 0
    findings: int = 0
    errors: int = 0  # reports that failed as a whole
    rejected: int = 0  # single findings rejected (the report's other findings were kept)
    done_elsewhere: int = 0  # DB mode: another run stored this version first (nothing written)
    under_review: int = 0  # DB mode: a reviewer has started on the report: left alone
    seconds: float = 0.0

    def format(self) -> str:
        rate = self.reports / self.seconds if self.seconds > 0 else 0.0
        skipped = "".join(f", {n} {what}" for n, what in (
            (self.done_elsewhere, "reports already stored by another run"),
            (self.under_review, "reports under review left alone")) if n)
        return (f"{self.reports} reports processed, {self.findings} findings, {self.errors} "
                f"errors, {self.rejected} findings rejected{skipped}, {rate:,.1f} reports/s")

    @property
    def all_failed(self) -> bool:
        return self.reports > 0 and self.errors == self.reports


@dataclass(frozen=True)
class InputLine:
    """One non-blank input line: a report to extract, or the reason it cannot be read."""

    key: str  # str(id): what the extractor sees
    id: object  # the id as the input gave it (an int stays an int in the output)
    text: str | None
    error: str | None = None


def _read_jsonl(path: Path, limit: int | None) -> list[InputLine]:
    """Every line, good or bad: a bad line becomes an error line of the output, not a crash."""
    lines: list[InputLine] = []
    with open(path, "rb") as f:  # decoded line by line: one bad byte costs only its line
        for lineno, data in enumerate(f, 1):
            if not data.strip():
                continue
            if limit is not None and len(lines) >= limit:
                break
            where = f"{path.name}:{lineno}"
            try:
                raw = data.decode("utf-8")
            except UnicodeDecodeError as exc:
                lines.append(InputLine(where, None, None, f"{where}: not UTF-8 (byte "
                                       f"0x{data[exc.start]:02x} at column {exc.start + 1})"))
                continue
            try:
                obj = json.loads(raw)
            except ValueError as exc:
                lines.append(InputLine(where, None, None, f"{where}: invalid JSON ({exc})"))
                continue
            item_id = obj.get("id") if isinstance(obj, dict) else None
            if item_id is None or not isinstance(obj.get("text"), str):
                lines.append(InputLine(where, item_id, None,
                                       f'{where}: expected {{"id": ..., "text": "..."}}'))
                continue
            lines.append(InputLine(str(item_id), item_id, obj["text"]))
    return lines


def verbatim_only(result: ExtractionResult, text: str) -> ExtractionResult:
    """The result with every finding whose evidence is not its verbatim report slice moved to
    ``rejected`` (the contract of every extractor, rules and LLM alike; ``db.evidence``)."""
    bad = [f for f in result.findings if not evidence_is_verbatim(text, f.evidence)]
    if not bad:
        return result
    return result.model_copy(update={
        "findings": [f for f in result.findings if f not in bad],
        "rejected": [*result.rejected,
                     *(f"{f.category}: evidence is not a verbatim slice of the report" for f in bad)]})


def _write_result(out, item_id: object, result: ExtractionResult, summary: ExtractSummary) -> None:
    line: dict = {"id": item_id, "findings": [f.to_json() for f in result.findings]}
    if result.error:
        line["error"] = result.error
        summary.errors += 1
    if result.rejected:
        line["rejected"] = list(result.rejected)
    summary.reports += 1
    summary.rejected += len(result.rejected)
    summary.findings += len(result.findings)
    out.write(json.dumps(line, ensure_ascii=False) + "\n")


def run_file(extractor: Extractor, input_path: Path, output_path: Path,
             limit: int | None = None) -> ExtractSummary:
    """File mode: one output line per input line, {"id", "findings"} (plus "error" on failure)."""
    summary, t0 = ExtractSummary(), time.perf_counter()
    lines = _read_jsonl(input_path, limit)
    good = [(ln.key, ln.text) for ln in lines if ln.error is None]
    texts = dict(good)
    ids = {ln.key: ln.id for ln in lines if ln.error is None}
    output_path.parent.mkdir(parents=True, exist_ok=True)
    with open(output_path, "w", encoding="utf-8") as out, \
            tqdm(total=len(lines), unit="report", disable=None, file=sys.stderr) as bar:
        for ln in lines:
            if ln.error is not None:
                _write_result(out, ln.id, ExtractionResult(id=ln.key, error=ln.error), summary)
                bar.update(1)
        for batch in batched(good, BATCH):
            for result in extractor.extract_batch(batch):
                _write_result(out, ids[result.id], verbatim_only(result, texts[result.id]),
                              summary)
                bar.update(1)
    summary.seconds = time.perf_counter() - t0
    return summary


def finding_row(f: ExtractedFinding, extractor: Extractor) -> dict:
    """Finding columns of one extracted finding (extractor name/version are added by the query)."""
    return {"category": f.category, "presence": f.presence, "severity": f.severity,
            "side": f.location.side, "region": f.location.region,
            "evidence_start": f.evidence.start, "evidence_end": f.evidence.end,
            "evidence_text": f.evidence.text,
            "prompt_version": getattr(extractor, "prompt_version", None),
            "model_name": getattr(extractor, "model", None)}


def _store(results: list[ExtractionResult], texts: dict[int, str], extractor: Extractor,
           session, summary: ExtractSummary, force: bool) -> None:
    """Write a batch of outcomes: the findings of each report in one query call, and an
    ExtractionError per failed report or rejected finding (none for a report this run skipped:
    the run that stored it recorded its own)."""
    name, version = extractor.name, extractor.version
    checked = {int(r.id): verbatim_only(r, texts[int(r.id)]) for r in results if not r.error}
    for r in (r for r in results if r.error):
        queries.add_extraction_error(int(r.id), name, version, r.error, session=session)
    stored = queries.store_proposed_findings(
        name, version, {rid: [finding_row(f, extractor) for f in r.findings]
                        for rid, r in checked.items()}, force=force, session=session)
    for rid, outcome in stored.items():
        summary.done_elsewhere += outcome.skipped == "done"
        summary.under_review += outcome.skipped == "under review"
        if outcome.skipped is None:
            for message in checked[rid].rejected:
                queries.add_extraction_error(rid, name, version, REJECTED_PREFIX + message,
                                             session=session)
            summary.rejected += len(checked[rid].rejected)
            summary.findings += outcome.stored
    summary.reports += len(results)
    summary.errors += len(results) - len(checked)


def run_db(extractor: Extractor, db_url: str, *, limit: int | None = None,
           force: bool = False) -> ExtractSummary:
    """DB mode: extract every report lacking findings of this extractor version.

    Safe to run twice at once and while reviewers work: each report's findings of one version
    are stored once, and a report a reviewer has started on is left alone (``--force`` too);
    see ``db.queries.extraction``.
    """
    summary, t0 = ExtractSummary(), time.perf_counter()
    with session_scope(db_url) as session:
        ids = queries.list_report_ids_to_extract(extractor.name, extractor.version,
                                                 session=session, limit=limit, force=force)
        summary.under_review = queries.count_reports_left_for_review(
            extractor.name, extractor.version, session=session, force=force)
    with tqdm(total=len(ids), unit="report", disable=None, file=sys.stderr) as bar:
        for batch_ids in batched(ids, BATCH):
            with session_scope(db_url) as session:
                texts = queries.get_report_texts(batch_ids, session=session)
            pending: list[ExtractionResult] = []
            last = time.monotonic()
            for result in extractor.extract_batch([(str(i), texts[i]) for i in batch_ids]):
                pending.append(result)
                if len(pending) >= COMMIT_EVERY or time.monotonic() - last > COMMIT_SECONDS:
                    _commit(pending, texts, extractor, db_url, summary, force)
                    bar.update(len(pending))
                    pending, last = [], time.monotonic()
            _commit(pending, texts, extractor, db_url, summary, force)
            bar.update(len(pending))
    summary.seconds = time.perf_counter() - t0
    return summary


def _commit(results: list[ExtractionResult], texts, extractor, db_url, summary, force) -> None:
    if not results:
        return
    with session_scope(db_url) as session:
        _store(results, texts, extractor, session, summary, force)
