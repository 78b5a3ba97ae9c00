"""Source adapters of ``pipeline.ingest.run``: each turns a source into ``StudyItem``s and
``ItemError``s, reading text and headers only; pixels are decoded later, in worker processes.

Items carry the source's own ids (they may be identifiers); ``pipeline.ingest.run`` pseudonymises
them before anything is stored or logged. ``ref`` is a source-relative reference ("ecgen-
radiology/7.xml", "manifest.csv row 12") that the driver makes safe with ``deid.safe_ref``.
"""

from __future__ import annotations

import csv
import re
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from db.models import Split
from pipeline.ingest.deid import identifier_strings, parse_date
from pipeline.ingest.pixels import BadImage

SECTIONS = ("comparison", "indication", "findings", "impression")  # Open-i's XML order
# Header words that open a section in free-text reports (MIMIC-CXR, demo manifests).
SECTION_ALIASES = {
    "FINDINGS": "findings", "IMPRESSION": "impression", "CONCLUSION": "impression",
    "INDICATION": "indication", "HISTORY": "indication", "CLINICAL HISTORY": "indication",
    "REASON FOR EXAM": "indication", "COMPARISON": "comparison", "COMPARISONS": "comparison",
}
HEADER_RE = re.compile(r"^[ \t]*([A-Z][A-Z /]{2,40}):", re.MULTILINE)
IMAGE_SUFFIXES = {".dcm", ".dicom", ".png", ".jpg", ".jpeg", ""}  # "" : DICOMs often lack one
INTER_TAG_SPACE = re.compile(rb">\s+<")
SPLITS = {"train": Split.train, "val": Split.val, "valid": Split.val, "validate": Split.val,
          "validation": Split.val, "test": Split.test}


@dataclass(frozen=True)
class ReportText:
    text: str  # full report with section headers
    findings: str | None = None
    impression: str | None = None
    indication: str | None = None
    comparison: str | None = None


@dataclass(frozen=True)
class ImageRef:
    image_id: str  # stable source id of the image (a source-relative path, a dicom_id)
    path: Path  # where the file should be
    view: str | None = None
    ref: str | None = None  # for messages: "manifest.csv line 7: img/a.dcm" (default image_id)
    where: str | None = None  # how to find the file once its ref is masked ("file 3 of 40 ...")


@dataclass
class StudyItem:
    dataset: str
    study_id: str  # source study id (may be an identifier: pseudonymised before storing)
    patient_id: str  # source patient id; the study id when the source has none
    ref: str  # source-relative reference for logs and IngestError
    study_date: date | None = None  # real date: shifted before storing
    split: str | None = None
    report: ReportText | None = None
    report_error: str | None = None  # why the source's report could not be used
    images: list[ImageRef] = field(default_factory=list)
    identifiers: frozenset[str] = frozenset()  # values to scrub from text and refs
    # (ref, message) of things that did not stop the study: logged (made safe), not recorded
    warnings: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class ItemError:
    dataset: str
    ref: str
    message: str
    identifiers: frozenset[str] = frozenset()
    where: str | None = None  # as ImageRef.where
    study_id: str | None = None  # the source study the record belongs to, when it says


Item = StudyItem | ItemError


def parse_report(text: str) -> ReportText:
    """Split free text on section headers; unknown headers (EXAMINATION, TECHNIQUE) stay in
    ``text`` only. Text before the first header is kept in ``text`` too."""
    text = text.strip()
    parts: dict[str, str] = {}
    matches = list(HEADER_RE.finditer(text))
    for i, match in enumerate(matches):
        name = SECTION_ALIASES.get(" ".join(match.group(1).split()))
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = " ".join(text[match.end():end].split())
        if name and body and name not in parts:
            parts[name] = body
    return ReportText(text=text, **parts)


def build_report(sections: dict[str, str]) -> ReportText | None:
    """A report from named sections (Open-i), headers joined in a fixed order."""
    parts = {k: " ".join(v.split()) for k, v in sections.items() if v and v.strip()}
    if not parts:
        return None
    text = "\n".join(f"{k.upper()}: {parts[k]}" for k in SECTIONS if k in parts)
    return ReportText(text=text, **parts)


def normalize_split(value: str | None) -> Split | None:
    if value is None or not value.strip():
        return None
    split = SPLITS.get(value.strip().lower())
    if split is None:
        raise ValueError(f"unknown split {value.strip()[:20]!r} (train, val or test)")
    return split


# --- Open-i ---------------------------------------------------------------------------------


def _openi_item(name: str, data: bytes, images_dir: Path | None) -> Item:
    try:
        # Dropping the indentation between tags first makes the parse ~1.5x faster (Open-i's
        # XML is mostly whitespace); text inside elements is untouched.
        root = ET.fromstring(INTER_TAG_SPACE.sub(b"><", data))
    except ET.ParseError as exc:
        return ItemError("openi", name, f"unreadable XML ({exc})")
    uid = root.find("uId")
    study_id = (uid.get("id") if uid is not None else "") or ""
    if not study_id.strip():
        return ItemError("openi", name, "XML without <uId id=...>")
    sections = {(el.get("Label") or "").lower(): "".join(el.itertext())
                for el in root.iter("AbstractText")}
    report = build_report({k: v for k, v in sections.items() if k in SECTIONS})
    item = StudyItem(dataset="openi", study_id=study_id, patient_id=study_id, ref=name,
                     report=report,
                     report_error=None if report else "report without text (all sections empty)")
    if images_dir is not None:
        for image in root.iter("parentImage"):
            image_id = image.get("id") or ""
            path = images_dir / f"{image_id}.png"
            if image_id and path.is_file():  # a folder may hold a subset: absent ones are skipped
                item.images.append(ImageRef(image_id=image_id, path=path))
    return item


def iter_openi(tgz: Path, images_dir: Path | None = None) -> Iterator[Item]:
    """Open-i ``NLMCXR_reports.tgz``: one study per XML, images matched by ``parentImage`` id."""
    with tarfile.open(tgz, "r:*") as tar:
        for member in tar:
            if not member.isfile() or not member.name.endswith(".xml"):
                continue
            fh = tar.extractfile(member)
            yield _openi_item(member.name, fh.read() if fh else b"", images_dir)


# --- folder + manifest ------------------------------------------------------------------------


def read_report_file(path: Path) -> tuple[str, str | None]:
    """(text, warning): UTF-8 (with or without BOM), else Windows-1252, the usual encoding of
    reports exported on Windows and a superset of Latin-1's printable range, else Latin-1,
    which decodes any byte. The warning says which fallback was used."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        where = f"byte 0x{data[exc.start]:02x} at offset {exc.start}"
    for encoding in ("cp1252", "latin-1"):
        try:
            return data.decode(encoding), f"not UTF-8 ({where}): read as {encoding}"
        except UnicodeDecodeError:
            continue
    raise AssertionError("latin-1 decodes every byte")  # pragma: no cover


def _read_report_cell(value: str, base: Path) -> tuple[ReportText | str, str | None]:
    """Inline text, or a path to a .txt relative to ``base`` (a message string when unusable),
    and a warning about how it was read."""
    value, warning = (value or "").strip(), None
    if value.lower().endswith(".txt") and "\n" not in value:
        path = base / value
        if not path.is_file():
            return f"report file not found: {value}", None
        try:
            text, note = read_report_file(path)
        except OSError as exc:
            return f"unreadable report file {value} ({type(exc).__name__})", None
        value, warning = text.strip(), note and f"report file {value} {note}"
    return (parse_report(value) if value else "report without text"), warning


def _manifest_row(row: dict, line: int, base: Path, image_base: Path) -> dict | str:
    """One manifest row as clean fields, or the reason it is unusable."""
    if None in row or any(v is None for v in row.values()):
        return f"line {line}: wrong number of fields"
    study_id = (row.get("study_id") or "").strip()
    image = (row.get("image") or "").strip()
    if not study_id:
        return f"line {line}: empty study_id"
    if not image:
        return f"line {line}: empty image"
    study_date = None
    if (row.get("study_date") or "").strip():
        study_date = parse_date(row["study_date"])
        if study_date is None:
            return f"line {line}: unparseable study_date"
    try:
        split = normalize_split(row.get("split"))
    except ValueError as exc:
        return f"line {line}: {exc}"
    path = image_base / image if (image_base / image).exists() else base / image
    return {"study_id": study_id, "image": Path(image).as_posix(), "path": path,
            "patient_id": (row.get("patient_id") or "").strip() or study_id,
            "study_date": study_date, "split": split, "report": row.get("report") or "",
            "view": (row.get("view") or "").strip().upper()[:16] or None,
            "dataset": (row.get("dataset") or "").strip() or None}


def _read_manifest_rows(manifest: Path, image_base: Path, dataset: str
                        ) -> Iterator[dict | ItemError]:
    name = manifest.name
    try:
        fh = manifest.open(newline="", encoding="utf-8-sig", errors="strict")
        reader = csv.DictReader(fh)
        missing = {"study_id", "image", "report"} - set(reader.fieldnames or [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        yield ItemError(dataset, name, f"unreadable manifest ({type(exc).__name__})")
        return
    with fh:
        if missing:
            yield ItemError(dataset, name, f"manifest lacks columns {sorted(missing)}")
            return
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield ItemError(dataset, f"{name} line {line}", f"unreadable CSV row ({exc})")
                if isinstance(exc, UnicodeDecodeError):
                    return  # the decoder cannot resynchronise inside a text stream
                continue
            parsed = _manifest_row(row, line, manifest.parent, image_base)
            if isinstance(parsed, str):
                ids = identifier_strings([row.get("patient_id"), row.get("study_id")])
                study_id = str(row.get("study_id") or "").strip() or None
                yield ItemError(dataset, f"{name} line {line}", parsed, ids, study_id=study_id)
            else:
                parsed["ref"] = f"{name} line {line}"
                yield parsed


def iter_manifest(folder: Path, manifest: Path, dataset: str) -> Iterator[Item]:
    """Rows grouped into studies (several rows may share a study_id)."""
    studies: dict[str, StudyItem] = {}
    for row in _read_manifest_rows(manifest, folder, dataset):
        if isinstance(row, ItemError):
            yield row
            continue
        item = studies.get(row["study_id"])
        if item is None:
            item = studies[row["study_id"]] = StudyItem(
                dataset=row["dataset"] or dataset, study_id=row["study_id"],
                patient_id=row["patient_id"], ref=row["ref"], study_date=row["study_date"],
                split=row["split"],
                identifiers=identifier_strings([row["patient_id"], row["study_id"]]))
        if item.report is None:
            report, warning = _read_report_cell(row["report"], manifest.parent)
            if isinstance(report, ReportText):
                item.report, item.report_error = report, None
            else:
                item.report_error = report
            if warning:
                item.warnings.append((row["ref"], warning))
        item.images.append(ImageRef(image_id=row["image"], path=row["path"], view=row["view"],
                                    ref=f"{row['ref']}: {row['image']}"))
    yield from studies.values()


def iter_image_folder(folder: Path, dataset: str) -> Iterator[Item]:
    """A folder of images without a manifest: DICOMs grouped by StudyInstanceUID, every other
    image its own study; no reports."""
    from pipeline.ingest.dicom import read_header

    studies: dict[str, StudyItem] = {}
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    for n, path in enumerate(files, 1):
        rel = path.relative_to(folder).as_posix()
        # A message masks identifiers in the path; this still leads to the file.
        where = f"file {n} of {len(files)} under the folder, sorted by path"
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        with path.open("rb") as fh:
            head = fh.read(132)
        if head[128:132] == b"DICM":
            try:
                header = read_header(path)
            except BadImage as exc:
                yield ItemError(dataset, rel, str(exc), where=where)
                continue
            study_id, patient_id = header.study_uid, header.patient_id or header.study_uid
            ids, study_date = header.identifiers | {header.study_uid}, header.study_date
        else:
            study_id = patient_id = rel.rsplit(".", 1)[0]
            ids, study_date = frozenset(), None
        item = studies.get(study_id)
        if item is None:
            item = studies[study_id] = StudyItem(dataset=dataset, study_id=study_id,
                                                 patient_id=patient_id, ref=rel,
                                                 study_date=study_date, identifiers=ids)
        item.images.append(ImageRef(image_id=rel, path=path, where=where))
    yield from studies.values()
