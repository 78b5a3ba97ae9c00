"""The ingest library: items from a source -> de-identified Study, Image and Report rows, in
batches of one transaction each (the CLI and its usage are in ``pipeline.ingest.cli``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from db.engine import init_db
from db.models import utcnow
from db.queries import (
    BatchWritten,
    add_ingest_errors,
    find_image_keys,
    find_studies_with_report,
    find_study_ids,
    resolve_ingest_errors,
    write_ingest_batch,
)
from pipeline.batching import batched
from pipeline.ingest.deid import Pseudonymizer, safe_ref, scrub_text
from pipeline.ingest.sources import (
    Item,
    ItemError,
    StudyItem,
)
from pipeline.ingest.workers import (
    ImageJob,
    ImageOutcome,
    dicom_identifiers,
    exit_with_parent,
    process_image,
)

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
class IngestSummary:
    items: int = 0  # studies (and unreadable records) seen
    ingested: int = 0  # studies with anything new stored and nothing failed
    unchanged: int = 0  # studies already stored in full
    failed: int = 0  # records and studies with an image or report that failed
    partial: int = 0  # of the failed studies, those whose other rows were stored
    images: int = 0  # new Image rows
    reports: int = 0  # new Report rows
    errors: int = 0  # new IngestError rows
    resolved: int = 0  # IngestError rows of earlier runs whose study is now stored whole
    # study keys that had an error in this run: their errors are not resolved by it
    failing: set[str] = field(default_factory=set, repr=False)

    def line(self) -> str:
        partly = f", {self.partial} of them partly stored" if self.partial else ""
        resolved = f", {self.resolved} resolved" if self.resolved else ""
        return (f"{self.items} items: {self.ingested} ingested, {self.unchanged} unchanged, "
                f"{self.failed} failed{partly} ({self.images} images, {self.reports} reports "
                f"stored; {self.errors} new errors in table ingesterror{resolved})")


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

    def error(self, dataset: str, ref: str, message: str, identifiers: Iterable[str],
              where: str | None = None, subject: str | None = None) -> None:
        """Record an error about ``ref`` (of the study keyed ``subject``, when known)."""
        ids = set(identifiers)
        item, message = safe_ref(ref, self.pseudo, ids), safe_ref(message, self.pseudo, ids)
        if where and item != ref:  # masked: say where the file is some other way
            item = f"{item} ({where})"
        self.errors.append({"dataset": dataset, "item": item[:500], "message": message,
                            "subject_key": subject, "created_at": utcnow()})


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


def _decoded(item: StudyItem, outcomes: dict[str, ImageOutcome], pseudo: Pseudonymizer):
    """(new Image rows, failed (image, message) pairs, paths not decoded this time, header
    identifiers, DICOM study date) of one study's images."""
    new_images, failed, not_decoded, ids, study_date = [], [], [], set(), None
    for image in item.images:
        outcome = outcomes.pop(pseudo.image_key(item.dataset, image.image_id), None)
        if outcome is None:  # stored already (or listed twice): not decoded this time
            not_decoded.append(image.path)
            continue
        ids |= outcome.identifiers  # a failed DICOM's header too
        if outcome.error:
            failed.append((image, outcome.error))
            continue
        new_images.append({**outcome.row, "view": image.view or outcome.row["view"]})
        study_date = study_date or outcome.study_date
    return new_images, failed, not_decoded, ids, study_date


def _build_study(item: StudyItem, batch: _Batch, outcomes: dict[str, ImageOutcome],
                 existing: dict[str, int], with_report: set[int]) -> str:
    """Add one study's rows to the batch; returns 'ingested', 'unchanged' or 'failed' (an image
    or the report failed, whether or not the rest could be stored)."""
    pseudo, dataset = batch.pseudo, item.dataset
    study_key = pseudo.study_key(dataset, item.study_id)
    wants_report = item.report is not None and existing.get(study_key) not in with_report
    new_images, failed, not_decoded, ids, study_date = _decoded(item, outcomes, pseudo)
    ids |= set(item.identifiers) | {item.patient_id, item.study_id}
    report_failed = item.report is None and item.report_error is not None
    if wants_report or failed or report_failed or item.warnings:  # text to scrub: all headers
        for path in not_decoded:
            ids |= dicom_identifiers(path)
    for image, message in failed:  # made safe once all the study's identifiers are known
        batch.error(dataset, image.ref or image.image_id, message, ids, image.where, study_key)
    if report_failed:
        batch.error(dataset, item.ref, item.report_error, ids, subject=study_key)
    for ref, message in item.warnings:  # e.g. a report file read as cp1252
        log.warning("%s: %s", safe_ref(ref, pseudo, ids), safe_ref(message, pseudo, ids))
    report = None
    if wants_report:
        report = {k: scrub_text(v, ids) if v else None for k, v in vars(item.report).items()}
        report["text_sha256"] = _sha256(report["text"])
    if study_key not in existing:
        if not new_images and report is None:
            return "failed"
        batch.studies.append({
            "study_key": study_key, "patient_key": pseudo.patient_key(dataset, item.patient_id),
            "dataset": dataset, "split": item.split, "created_at": utcnow(),
            "study_date": pseudo.shift_date(item.study_date or study_date, dataset,
                                            item.patient_id)})
    batch.images.setdefault(study_key, []).extend(new_images)
    if report is not None:
        batch.reports[study_key] = report
    if failed or report_failed:
        return "failed"
    return "ingested" if (study_key not in existing or new_images or report) else "unchanged"


def _write(batch: _Batch, whole: list[str], session: Session) -> tuple[BatchWritten, int, int]:
    """One transaction, under the ingest lock: the rows, the new errors, and the resolution of
    earlier errors of the ``whole`` studies. Returns (what was stored, new errors, resolved)."""
    written = write_ingest_batch(batch.studies, batch.images, batch.reports, session=session)
    new_errors = add_ingest_errors(batch.errors, session=session)
    return written, len(new_errors), resolve_ingest_errors(whole, session=session)


def _merge_duplicates(items: list[StudyItem], pseudo: Pseudonymizer) -> list[StudyItem]:
    """One item per study key within a batch (a source may list a study twice)."""
    merged: dict[str, StudyItem] = {}
    for item in items:
        key = pseudo.study_key(item.dataset, item.study_id)
        if key in merged:
            merged[key].images.extend(item.images)
            merged[key].report = merged[key].report or item.report
            merged[key].warnings.extend(item.warnings)
        else:
            merged[key] = item
    return list(merged.values())


def ingest_batch(raw: list[Item], config: IngestConfig, pseudo: Pseudonymizer, engine,
                 pool: DecoderPool, summary: IngestSummary) -> None:
    """Decode the batch's new images, then write all its rows in one transaction."""
    batch = _Batch(config, pseudo)
    for bad in (i for i in raw if isinstance(i, ItemError)):
        dataset = config.dataset or bad.dataset
        subject = pseudo.study_key(dataset, bad.study_id) if bad.study_id else None
        batch.error(dataset, bad.ref, bad.message, bad.identifiers, bad.where, subject)
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
    statuses = {pseudo.study_key(i.dataset, i.study_id): _build_study(i, batch, outcomes, existing,
                                                                      with_report)
                for i in items}
    summary.failing |= {e["subject_key"] for e in batch.errors if e["subject_key"]}
    whole = [k for k, st in statuses.items() if st != "failed" and k not in summary.failing]
    with Session(engine) as session:
        written, new_errors, resolved = _write(batch, whole, session)
        session.commit()
    for key, status in statuses.items():
        if status == "ingested" and key not in written.study_keys:
            status = "unchanged"  # another ingest running beside this one stored it first
        summary.partial += status == "failed" and key in written.study_keys
        setattr(summary, status, getattr(summary, status) + 1)
    for error in batch.errors:  # every run says what still fails, recorded before or not
        log.warning("%s: %s", error["item"], error["message"])
    summary.errors += new_errors
    summary.resolved += resolved
    summary.items += len(raw)
    summary.images += written.images
    summary.reports += written.reports


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


def run_ingest(items: Iterable[Item], config: IngestConfig) -> IngestSummary:
    """Ingest items into the store at ``config.database_url``; the library entry point."""
    engine = init_db(config.database_url)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    pseudo, summary = Pseudonymizer(config.salt), IngestSummary()
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
