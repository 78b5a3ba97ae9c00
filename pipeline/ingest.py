"""Ingest: studies (DICOM / PNG / JPEG + report text) -> de-identified Study, Image, Report rows.

    python -m pipeline.ingest --db sqlite:///data/medfilip.db openi ../shared/data/openi/NLMCXR_reports.tgz
    python -m pipeline.ingest --data-dir data folder ../shared/data/images/

Sources: ``folder DIR [--manifest CSV]`` (images plus a manifest with study_id, image, report
and optional view, patient_id, study_date, split, dataset; DIR/manifest.csv is used when present;
without a manifest every image is ingested, DICOMs grouped by study), ``openi TGZ [--images
DIR]``, ``mimic-cxr-jpg ROOT`` and ``chexpert ROOT`` (their published layouts).

Everything is de-identified on the way in (``pipeline.deid``): keys are salted pseudonyms
(salt: ``MEDFILIP_SALT``), dates shift per patient, DICOM headers are never stored, and report
text is scrubbed of the study's known identifiers. Ingest is idempotent (a key already stored is
"unchanged") and resumable: each batch of studies is one transaction and pixel files have
deterministic names, so a killed run picks up where it stopped. A bad item becomes an
IngestError row and the run goes on; the exit status is 1 only when nothing could be ingested.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from db.engine import init_db
from db.models import Image, Report, Study, utcnow
from db.queries import (
    add_ingest_errors,
    find_image_keys,
    find_studies_with_report,
    find_study_ids,
    insert_ingest_rows,
)
from pipeline.batching import batched
from pipeline.deid import Pseudonymizer, safe_ref, scrub_text
from pipeline.dicom import read_header
from pipeline.imaging import BadImage
from pipeline.ingest_adapters import (
    Item,
    ItemError,
    StudyItem,
    iter_image_folder,
    iter_manifest,
    iter_openi,
)
from pipeline.ingest_datasets import iter_chexpert, iter_mimic
from pipeline.ingest_images import (
    ImageJob,
    ImageOutcome,
    exit_with_parent,
    process_image,
    sniff_format,
)
from pipeline.settings import get_settings

log = logging.getLogger("pipeline.ingest")


@dataclass(frozen=True)
class IngestConfig:
    database_url: str  # SQLAlchemy URL of the store
    data_dir: Path  # pixel files go under it; Image paths are stored relative to it
    salt: str = field(repr=False)  # pseudonym salt: never printed
    dataset: str | None = None  # overrides the adapter's dataset name (and so the keys)
    split: str | None = None  # split for studies whose source gives none
    batch_size: int = 200  # studies per transaction: the unit of resume after a kill
    workers: int = 2  # image-decoding processes; 0 decodes in this process
    progress: bool = True  # tqdm bar on stderr


@dataclass
class Summary:
    items: int = 0  # studies (and unreadable records) seen
    ingested: int = 0  # studies with anything new stored
    unchanged: int = 0  # studies already stored in full
    failed: int = 0  # records with nothing storable
    images: int = 0  # new Image rows
    reports: int = 0  # new Report rows
    errors: int = 0  # new IngestError rows

    def line(self) -> str:
        return (f"{self.items} items: {self.ingested} ingested, {self.unchanged} unchanged, "
                f"{self.failed} failed ({self.images} images, {self.reports} reports stored; "
                f"{self.errors} new errors in table ingesterror)")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Batch:
    """Rows of one transaction, built from a batch of items and their decoded images."""

    def __init__(self, config: IngestConfig, pseudo: Pseudonymizer):
        self.config, self.pseudo = config, pseudo
        self.studies: list[dict] = []
        self.images: dict[str, list[dict]] = {}  # study_key -> Image rows
        self.reports: dict[str, dict] = {}  # study_key -> Report row
        self.errors: list[dict] = []

    def error(self, dataset: str, ref: str, message: str, identifiers: Iterable[str]) -> None:
        ids = set(identifiers)
        item, message = safe_ref(ref, self.pseudo, ids), safe_ref(message, self.pseudo, ids)
        self.errors.append({"dataset": dataset, "item": item[:500], "message": message,
                            "created_at": utcnow()})


def _prepare(item: StudyItem, config: IngestConfig) -> StudyItem:
    item.dataset = config.dataset or item.dataset
    item.split = item.split or config.split
    return item


def _image_jobs(items: list[StudyItem], known_images: set[str], config: IngestConfig,
                pseudo: Pseudonymizer) -> list[ImageJob]:
    jobs, seen = [], set(known_images)
    for item in items:
        for image in item.images:
            key = pseudo.image_key(item.dataset, image.image_id)
            if key not in seen:
                seen.add(key)
                jobs.append(ImageJob(path=image.path, image_key=key, data_dir=config.data_dir))
    return jobs


def _header_identifiers(path: Path) -> set[str]:
    """Identifiers of a DICOM stored by an earlier run, for scrubbing a report that arrives
    later; empty for other files."""
    try:
        return set(read_header(path).identifiers) if sniff_format(path) == "dicom" else set()
    except BadImage:
        return set()


def _build_study(item: StudyItem, batch: _Batch, outcomes: dict[str, ImageOutcome],
                 existing: dict[str, int], with_report: set[int]) -> str:
    """Add one study's rows to the batch; returns 'ingested', 'unchanged' or 'failed'."""
    pseudo, dataset = batch.pseudo, item.dataset
    study_key = pseudo.study_key(dataset, item.study_id)
    ids = set(item.identifiers) | {item.patient_id, item.study_id}
    wants_report = item.report is not None and existing.get(study_key) not in with_report
    new_images, study_date = [], item.study_date
    for image in item.images:
        outcome = outcomes.pop(pseudo.image_key(dataset, image.image_id), None)
        if outcome is None:  # stored already (or listed twice): not decoded this time
            ids |= _header_identifiers(image.path) if wants_report else set()
            continue
        ids |= outcome.identifiers
        if outcome.error:
            batch.error(dataset, image.image_id, outcome.error, ids)
            continue
        new_images.append({**outcome.row, "view": image.view or outcome.row["view"]})
        study_date = study_date or outcome.study_date
    report = None
    if wants_report:
        report = {k: scrub_text(v, ids) if v else None for k, v in vars(item.report).items()}
        report["text_sha256"] = _sha256(report["text"])
    elif item.report is None and item.report_error:
        batch.error(dataset, item.ref, item.report_error, ids)
    if study_key not in existing:
        if not new_images and report is None:
            return "failed"
        batch.studies.append({
            "study_key": study_key, "patient_key": pseudo.patient_key(dataset, item.patient_id),
            "dataset": dataset, "split": item.split, "created_at": utcnow(),
            "study_date": pseudo.shift_date(study_date, dataset, item.patient_id)})
    batch.images.setdefault(study_key, []).extend(new_images)
    if report is not None:
        batch.reports[study_key] = report
    return "ingested" if (study_key not in existing or new_images or report) else "unchanged"


def _write(batch: _Batch, session: Session, existing: dict[str, int]) -> list[dict]:
    insert_ingest_rows(Study, batch.studies, session=session)
    ids = dict(existing)
    ids.update(find_study_ids([s["study_key"] for s in batch.studies], session=session))
    images = [{**row, "study_id": ids[key]} for key, rows in batch.images.items() for row in rows]
    reports = [{**row, "study_id": ids[key]} for key, row in batch.reports.items()]
    insert_ingest_rows(Image, images, session=session)
    insert_ingest_rows(Report, reports, session=session)
    return add_ingest_errors(batch.errors, session=session)


def _merge_duplicates(items: list[StudyItem], pseudo: Pseudonymizer) -> list[StudyItem]:
    """One item per study key within a batch (a source may list a study twice)."""
    merged: dict[str, StudyItem] = {}
    for item in items:
        key = pseudo.study_key(item.dataset, item.study_id)
        if key in merged:
            merged[key].images.extend(item.images)
            merged[key].report = merged[key].report or item.report
        else:
            merged[key] = item
    return list(merged.values())


def ingest_batch(raw: list[Item], config: IngestConfig, pseudo: Pseudonymizer, engine,
                 pool: DecoderPool, summary: Summary) -> None:
    """Decode the batch's new images, then write all its rows in one transaction."""
    batch = _Batch(config, pseudo)
    for bad in (i for i in raw if isinstance(i, ItemError)):
        batch.error(config.dataset or bad.dataset, bad.ref, bad.message, bad.identifiers)
        summary.failed += 1
    items = _merge_duplicates([_prepare(i, config) for i in raw
                               if isinstance(i, StudyItem)], pseudo)
    with Session(engine) as session:
        existing = find_study_ids([pseudo.study_key(i.dataset, i.study_id) for i in items],
                                  session=session)
        known = find_image_keys([pseudo.image_key(i.dataset, im.image_id)
                                 for i in items for im in i.images], session=session)
        with_report = find_studies_with_report(list(existing.values()), session=session)
    outcomes = {o.image_key: o for o in pool.run(_image_jobs(items, known, config, pseudo))}
    for item in items:
        status = _build_study(item, batch, outcomes, existing, with_report)
        setattr(summary, status, getattr(summary, status) + 1)
    with Session(engine) as session:
        new_errors = _write(batch, session, existing)
        session.commit()
    for error in new_errors:  # a rerun over the same bad items stays quiet
        log.warning("%s: %s", error["item"], error["message"])
    summary.errors += len(new_errors)
    summary.items += len(raw)
    summary.images += sum(len(rows) for rows in batch.images.values())
    summary.reports += len(batch.reports)


class DecoderPool:
    """Image decoding in worker processes (or inline with 0 workers). A worker that dies -- a
    native decoder crashing on a malformed file, the OOM killer -- costs only its image: the
    batch is retried one job at a time in fresh pools and the culprit is recorded."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.workers, initializer=exit_with_parent)
        return self._pool

    def run(self, jobs: list[ImageJob]) -> list[ImageOutcome]:
        if self.workers == 0:
            return [process_image(job) for job in jobs]
        if len(jobs) < 2:
            return [self._one(job) for job in jobs]
        chunk = max(1, len(jobs) // (4 * self.workers))  # small PNGs: fewer round trips
        try:
            return list(self._executor().map(process_image, jobs, chunksize=chunk))
        except BrokenProcessPool:
            self.close()
            return [self._one(job) for job in jobs]

    def _one(self, job: ImageJob) -> ImageOutcome:
        try:
            return self._executor().submit(process_image, job).result()
        except BrokenProcessPool:
            self.close()
            return ImageOutcome(job.image_key, error="decoder crashed (worker process died)")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def run_ingest(items: Iterable[Item], config: IngestConfig) -> Summary:
    """Ingest items into the store at ``config.database_url``; the library entry point."""
    engine = init_db(config.database_url)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    pseudo, summary = Pseudonymizer(config.salt), Summary()
    items = list(items)  # adapters read text and headers only: cheap, and gives the bar a total
    pool = DecoderPool(config.workers)
    try:
        with logging_redirect_tqdm(), tqdm(total=len(items), unit="item", desc="ingest",
                                           disable=not config.progress) as bar:
            for raw in batched(items, config.batch_size):
                ingest_batch(raw, config, pseudo, engine, pool, summary)
                bar.update(len(raw))
    finally:
        pool.close()
    return summary


def iter_source(args: argparse.Namespace) -> Iterator[Item]:
    if args.source == "openi":
        return iter_openi(Path(args.tgz), Path(args.images) if args.images else None)
    if args.source == "mimic-cxr-jpg":
        return iter_mimic(Path(args.root))
    if args.source == "chexpert":
        return iter_chexpert(Path(args.root))
    folder = Path(args.dir)
    manifest = Path(args.manifest) if args.manifest else folder / "manifest.csv"
    if args.manifest or manifest.is_file():
        return iter_manifest(folder, manifest, folder.resolve().name or "folder")
    return iter_image_folder(folder, folder.resolve().name or "folder")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pipeline.ingest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", default=None, help="database URL (default: settings' DATABASE_URL)")
    p.add_argument("--data-dir", default=None, help="where pixel files are written (default: "
                   "settings' MEDFILIP_DATA_DIR); DB paths are relative to it")
    p.add_argument("--dataset", default=None, help="dataset name for every study, overriding "
                   "the adapter's (it is part of the pseudonymous keys)")
    p.add_argument("--split", choices=["train", "val", "test"], default=None,
                   help="split for studies whose source gives none")
    p.add_argument("--batch-size", type=int, default=200,
                   help="studies per transaction (default: 200)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="image-decoding processes, 0 for none (default: CPU count)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    sub = p.add_subparsers(dest="source", required=True, metavar="SOURCE",
                           help="folder | openi | mimic-cxr-jpg | chexpert")
    f = sub.add_parser("folder", help="images plus an optional manifest CSV")
    f.add_argument("dir", help="folder of images (PNG, JPEG, DICOM)")
    f.add_argument("--manifest", default=None, help="CSV with study_id,image,report[,view,"
                   "patient_id,study_date,split,dataset] (default: DIR/manifest.csv if present)")
    o = sub.add_parser("openi", help="Open-i NLMCXR_reports.tgz")
    o.add_argument("tgz", help="path to NLMCXR_reports.tgz")
    o.add_argument("--images", default=None, help="folder of Open-i PNGs named <parentImage id>.png")
    m = sub.add_parser("mimic-cxr-jpg", help="MIMIC-CXR-JPG root (files/, metadata CSVs)")
    m.add_argument("root", help="the MIMIC-CXR-JPG root folder")
    c = sub.add_parser("chexpert", help="CheXpert root (train.csv, valid.csv)")
    c.add_argument("root", help="the CheXpert-v1.0[-small] folder")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.batch_size < 1 or args.workers < 0:
        p.error("--batch-size must be >= 1 and --workers >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)  # its warnings can quote PHI
    settings = get_settings(database_url=args.db, data_dir=args.data_dir)
    config = IngestConfig(database_url=settings.database_url, data_dir=Path(settings.data_dir),
                          salt=settings.pseudonym_salt.get_secret_value(),
                          dataset=args.dataset, split=args.split, batch_size=args.batch_size,
                          workers=args.workers, progress=not args.no_progress)
    summary = run_ingest(iter_source(args), config)
    print(summary.line())
    return 0 if summary.ingested + summary.unchanged > 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
