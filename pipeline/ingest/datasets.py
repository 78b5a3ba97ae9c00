"""Adapters for the published layouts of MIMIC-CXR-JPG and CheXpert.

MIMIC-CXR-JPG 2.x (PhysioNet)::

    ROOT/mimic-cxr-2.0.0-metadata.csv[.gz]   dicom_id, subject_id, study_id, ViewPosition, StudyDate
    ROOT/mimic-cxr-2.0.0-split.csv[.gz]      dicom_id, study_id, subject_id, split (train/validate/test)
    ROOT/files/p10/p10000032/s50414267/<dicom_id>.jpg
    ROOT/files/p10/p10000032/s50414267.txt   (optional: MIMIC-CXR's report, when merged in)

The JPG release has no reports, so a study without a .txt is not an error. Without the
metadata CSV, the ``files/`` tree is walked instead.

CheXpert 1.0 (Stanford)::

    ROOT/train.csv, ROOT/valid.csv[, ROOT/test.csv]   Path, Sex, Age, Frontal/Lateral, AP/PA, labels
    Path = CheXpert-v1.0[-small]/train/patient00001/study1/view1_frontal.jpg (relative to ROOT's
    parent; ROOT itself is the CheXpert-v1.0[-small] folder)

CheXpert publishes no reports: studies hold images only.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path

from pipeline.ingest.deid import identifier_strings, parse_date
from pipeline.ingest.sources import (
    ImageRef,
    Item,
    ItemError,
    ReportText,
    StudyItem,
    normalize_split,
    parse_report,
)

MIMIC = "mimic-cxr-jpg"
CHEXPERT = "chexpert"


def _open_csv(root: Path, stem: str) -> io.TextIOBase | None:
    for path in (root / f"{stem}.csv", root / f"{stem}.csv.gz"):
        if path.is_file():
            if path.suffix == ".gz":
                return io.TextIOWrapper(gzip.open(path), encoding="utf-8", newline="")
            return path.open(encoding="utf-8", newline="")
    return None


def _mimic_rows(root: Path) -> Iterator[dict]:
    fh = _open_csv(root, "mimic-cxr-2.0.0-metadata")
    if fh is None:  # no metadata: walk files/pXX/pSUBJECT/sSTUDY/*.jpg
        for path in sorted((root / "files").glob("p*/p*/s*/*.jpg")):
            yield {"dicom_id": path.stem, "subject_id": path.parent.parent.name[1:],
                   "study_id": path.parent.name[1:], "_line": path.relative_to(root).as_posix()}
        return
    with fh:
        for line, row in enumerate(csv.DictReader(fh), start=2):
            row["_line"] = f"metadata line {line}"
            yield row


def _mimic_splits(root: Path) -> dict[str, str]:
    fh = _open_csv(root, "mimic-cxr-2.0.0-split")
    if fh is None:
        return {}
    with fh:
        return {r.get("dicom_id", ""): r.get("split", "") for r in csv.DictReader(fh)}


def _mimic_report(root: Path, subject: str, study: str) -> ReportText | None:
    path = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}.txt"
    if not path.is_file():
        return None
    return parse_report(path.read_text(encoding="utf-8", errors="replace"))


def iter_mimic(root: Path) -> Iterator[Item]:
    """MIMIC-CXR-JPG: one study per (subject_id, study_id), one image per dicom_id."""
    splits = _mimic_splits(root)
    studies: dict[str, StudyItem] = {}
    for row in _mimic_rows(root):
        subject = (row.get("subject_id") or "").strip()
        study = (row.get("study_id") or "").strip()
        dicom_id = (row.get("dicom_id") or "").strip()
        ids = identifier_strings([subject, study])
        if not (subject.isdigit() and study.isdigit() and dicom_id):
            yield ItemError(MIMIC, row["_line"], "row without subject_id, study_id or dicom_id",
                            ids)
            continue
        try:
            split = normalize_split(splits.get(dicom_id))
        except ValueError as exc:
            yield ItemError(MIMIC, row["_line"], str(exc), ids)
            continue
        item = studies.get(study)
        if item is None:
            item = studies[study] = StudyItem(
                dataset=MIMIC, study_id=f"s{study}", patient_id=subject, ref=row["_line"],
                study_date=parse_date(row.get("StudyDate")), split=split,
                report=_mimic_report(root, subject, study), identifiers=ids)
        path = root / "files" / f"p{subject[:2]}" / f"p{subject}" / f"s{study}" / f"{dicom_id}.jpg"
        view = (row.get("ViewPosition") or "").strip().upper()[:16] or None
        item.images.append(ImageRef(image_id=dicom_id, path=path, view=view))
    yield from studies.values()


def _chexpert_path(root: Path, rel: str) -> tuple[str, Path]:
    """(image id, file path): ids drop the release folder so -small and full ids match."""
    parts = Path(rel).parts
    inner = Path(*parts[1:]) if len(parts) > 1 and parts[0].lower().startswith("chexpert") else Path(rel)
    for candidate in (root.parent / rel, root / inner):
        if candidate.exists():
            return inner.as_posix(), candidate
    return inner.as_posix(), root / inner


def iter_chexpert(root: Path) -> Iterator[Item]:
    """CheXpert: study = patientNNNNN/studyN within a split; view from AP/PA or Frontal/Lateral."""
    studies: dict[str, StudyItem] = {}
    found = False
    for name, split in (("train", "train"), ("valid", "val"), ("test", "test")):
        fh = _open_csv(root, name)
        if fh is None:
            continue
        found = True
        with fh:
            for line, row in enumerate(csv.DictReader(fh), start=2):
                ref = f"{name}.csv line {line}"
                image_id, path = _chexpert_path(root, (row.get("Path") or "").strip())
                parts = Path(image_id).parts
                if len(parts) < 4 or not parts[1].startswith("patient"):
                    yield ItemError(CHEXPERT, ref, "Path is not <split>/patientN/studyN/<view>.jpg")
                    continue
                patient, study_id = parts[1], "/".join(parts[:3])
                item = studies.get(study_id)
                if item is None:
                    item = studies[study_id] = StudyItem(
                        dataset=CHEXPERT, study_id=study_id, patient_id=patient, ref=ref,
                        split=split, identifiers=identifier_strings([patient]))
                lateral = (row.get("Frontal/Lateral") or "").strip().lower() == "lateral"
                view = "LATERAL" if lateral else (row.get("AP/PA") or "").strip().upper()[:16]
                item.images.append(ImageRef(image_id=image_id, path=path, view=view or None))
    if not found:
        yield ItemError(CHEXPERT, root.name, "no train.csv, valid.csv or test.csv in ROOT")
    yield from studies.values()
