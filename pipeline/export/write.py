"""Writers of the settled labels (``db.queries.settled_reports`` / ``settled_findings``).

CheXpert CSV: one row per image; ``Path`` (the de-identified pixel file), the pseudonymous
study and image keys, view and split, then CheXpert's 14 columns as CheXpert spells them, each
1 / 0 / -1 / blank folded the CheXpert way (``pipeline.chexpert``), then our other categories.
JSONL / Parquet: one row per settled finding with its triplet, evidence span and offsets,
status, how it settled, the reviewers and the extractor version. Keys are pseudonyms only: no
patient identifier is in the store to begin with.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime

from db import queries
from pipeline import chexpert

FORMATS = ("chexpert", "jsonl", "parquet")


@dataclass(frozen=True)
class ExportFilter:
    statuses: tuple[str, ...] = queries.KEPT_STATUSES  # finding statuses kept in the export
    reviewer: str | None = None  # reports this account reviewed or adjudicated
    since: datetime | None = None  # settled (or changed) on or after
    split: str | None = None
    dataset: str | None = None


def load(session, flt: ExportFilter):
    reports = queries.settled_reports(session=session, dataset=flt.dataset, split=flt.split,
                                      since=flt.since, reviewer=flt.reviewer)
    findings = queries.settled_findings(session=session, reports=reports, statuses=flt.statuses)
    return reports, findings


def chexpert_rows(reports, findings) -> tuple[list[str], list[dict]]:
    """(header, rows): one row per image of every settled report."""
    extra = chexpert.extra_categories()
    header = ["Path", "study_key", "image_key", "view", "split", *chexpert.COLUMNS, *extra]
    by_report = defaultdict(list)
    for f in findings:
        if f.status != "rejected":
            by_report[f.report_id].append((f.category, f.presence))
    rows = []
    for r in reports:
        folded = chexpert.fold(by_report[r.report_id])
        labels = {col: folded.get(cat, "") for col, cat in chexpert.COLUMNS.items() if cat}
        labels[chexpert.NO_FINDING] = chexpert.no_finding(folded) or ""
        labels |= {c: folded.get(c, "") for c in extra}
        for key, path, view in r.images:
            rows.append({"Path": path, "study_key": r.study_key, "image_key": key,
                         "view": view or "", "split": r.split or "", **labels})
    return header, rows


def finding_records(reports, findings) -> list[dict]:
    meta = {r.report_id: r for r in reports}
    out = []
    for f in findings:
        r = meta[f.report_id]
        out.append({**asdict(f), "patient_key": r.patient_key, "dataset": r.dataset,
                    "split": r.split, "settled": r.how, "settled_at": r.settled_at.isoformat(),
                    "reviewers": list(r.reviewers)})
    return out


def render(fmt: str, reports, findings) -> bytes:
    """The export file's bytes in ``fmt`` (chexpert | jsonl | parquet)."""
    if fmt == "chexpert":
        header, rows = chexpert_rows(reports, findings)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().encode()
    records = finding_records(reports, findings)
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        buf = io.BytesIO()
        pq.write_table(pa.Table.from_pylist(records), buf)
        return buf.getvalue()
    raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
