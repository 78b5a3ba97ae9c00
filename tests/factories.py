"""Row factories for tests: small, explicit, one place."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from sqlmodel import Session, select

from db.models import (
    Finding,
    FindingStatus,
    Image,
    KnowledgeEntry,
    KnowledgeSource,
    KnowledgeStatus,
    Presence,
    Report,
    Reviewer,
    ReviewerRole,
    Study,
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_study(session: Session, *, key: str, dataset: str = "demo", split: str | None = "train",
               report: str = "FINDINGS: Lungs are clear.\nIMPRESSION: Normal chest.",
               data_dir: Path | None = None, view: str = "PA", size: int = 64,
               pixels: np.ndarray | None = None) -> Study:
    """A study with one report and, when ``data_dir`` is given, one image with real PNG files
    (``pixels``, else a fixed pattern)."""
    study = Study(study_key=_sha("s" + key), patient_key=_sha("p" + key), dataset=dataset,
                  split=split)
    session.add(study)
    session.flush()
    findings, _, impression = report.partition("\nIMPRESSION:")
    session.add(Report(study_id=study.id, text=report, text_sha256=_sha(report),
                       findings=findings.removeprefix("FINDINGS:").strip() or None,
                       impression=impression.strip() or None))
    if data_dir is not None:
        rel = f"images/{study.study_key[:16]}.png"
        if pixels is None:
            pixels = (np.arange(size * size).reshape(size, size) % 251).astype(np.uint8)
        (data_dir / "images").mkdir(parents=True, exist_ok=True)
        PILImage.fromarray(pixels).save(data_dir / rel)
        session.add(Image(study_id=study.id, image_key=_sha("i" + key), path=rel,
                          display_path=rel, thumb_path=rel, view=view, width=pixels.shape[1],
                          height=pixels.shape[0], source_format="png",
                          pixel_sha256=hashlib.sha256(pixels.tobytes()).hexdigest()))
    session.flush()
    return study


def make_finding(session: Session, *, report_id: int, category: str = "pleural_effusion",
                 presence: Presence = Presence.present, **fields) -> Finding:
    finding = Finding(report_id=report_id, category=category, presence=presence,
                      extractor=fields.pop("extractor", "rules"), **fields)
    session.add(finding)
    session.flush()
    return finding


def make_reviewer(session: Session, *, name: str = "Dr A",
                  role: ReviewerRole = ReviewerRole.reviewer) -> Reviewer:
    reviewer = Reviewer(name=name, role=role)
    session.add(reviewer)
    session.flush()
    return reviewer


def make_knowledge_entry(session: Session, *, category: str = "pleural_effusion",
                         subclass: str = "", explanation: str | None = None,
                         source: KnowledgeSource = KnowledgeSource.written,
                         status: KnowledgeStatus = KnowledgeStatus.draft,
                         reviewer_id: int | None = None) -> KnowledgeEntry:
    """An IKI entry row as it stands (no audit event: the state a test starts from)."""
    entry = KnowledgeEntry(category=category, subclass=subclass, source=source, status=status,
                           reviewer_id=reviewer_id,
                           explanation=explanation or f"what {category} {subclass} looks like")
    session.add(entry)
    session.flush()
    return entry


def make_knowledge(session: Session, *, category: str, **fields) -> KnowledgeEntry:
    """An approved IKI entry (what training reads)."""
    return make_knowledge_entry(session, category=category,
                                **{"status": KnowledgeStatus.approved, **fields})


# (category, presence, severity, side) per finding of the training-store studies, cycled
TRAINING_CASES = (
    (("pleural_effusion", Presence.present, "mild", "left"),),
    (("cardiomegaly", Presence.present, "moderate", None),
     ("pneumothorax", Presence.absent, None, None)),
    (("pneumothorax", Presence.present, None, "right"),),
    (("pleural_effusion", Presence.absent, None, None),),  # a normal study
)


def make_training_store(session: Session, data_dir: Path, *, n: int = 24, size: int = 32,
                        status: FindingStatus = FindingStatus.accepted,
                        knowledge: bool = True, test_share: int = 5) -> list[Study]:
    """``n`` studies with one distinct image each and findings from TRAINING_CASES (every
    ``test_share``-th study in the test split), plus approved IKI entries of their categories.
    A finding's bright square sits where its category "shows", so the images are learnable."""
    rng = np.random.default_rng(0)
    spots = {"pleural_effusion": (0.6, 0.1), "cardiomegaly": (0.4, 0.4), "pneumothorax": (0.1, 0.6)}
    studies = []
    for i in range(n):
        case = TRAINING_CASES[i % len(TRAINING_CASES)]
        pixels = rng.integers(0, 60, size=(size, size)).astype(np.uint8)
        for category, presence, _, _ in case:
            if presence == Presence.present:
                y, x = (int(v * size) for v in spots[category])
                pixels[y:y + size // 4, x:x + size // 4] = 230
        split = "test" if i % test_share == test_share - 1 else "train"
        study = make_study(session, key=f"t{i}", split=split, data_dir=data_dir, pixels=pixels)
        rep = session.exec(select(Report).where(Report.study_id == study.id)).one()
        for category, presence, severity, side in case:
            make_finding(session, report_id=rep.id, category=category, presence=presence,
                         severity=severity, side=side, status=status)
        studies.append(study)
    if knowledge:
        for category in spots:
            make_knowledge(session, category=category)
        make_knowledge(session, category="pleural_effusion", subclass="severity:mild",
                       explanation="a small effusion blunts the costophrenic angle")
    return studies


REVIEW_REPORT = ("FINDINGS: Small left pleural effusion. No pneumothorax. Mild cardiomegaly.\n"
                 "IMPRESSION: Left effusion.")


def make_reviewable_report(session: Session, *, key: str = "rv", report: str = REVIEW_REPORT,
                           data_dir: Path | None = None, extractor_version: str = "rules-1",
                           quotes: tuple[tuple[str, Presence, str], ...] = (
                               ("pleural_effusion", Presence.present, "Small left pleural effusion."),
                               ("pneumothorax", Presence.absent, "No pneumothorax."),
                               ("cardiomegaly", Presence.present, "Mild cardiomegaly."),
                           )) -> tuple[Report, list[Finding]]:
    """A study whose report has one proposed finding per (category, presence, quote), with
    evidence offsets pointing at the quote's first occurrence."""
    study = make_study(session, key=key, report=report, data_dir=data_dir)
    rep = session.exec(select(Report).where(Report.study_id == study.id)).one()
    findings = [make_finding(session, report_id=rep.id, category=cat, presence=presence,
                             evidence_start=report.index(q), evidence_end=report.index(q) + len(q),
                             evidence_text=q, extractor_version=extractor_version)
                for cat, presence, q in quotes]
    return rep, findings


# --- ingest fixtures: DICOM files, PNGs and manifests built on the fly -----------------------


def make_dicom(path: Path, *, pixels: np.ndarray | None = None, rows: int = 32, cols: int = 40,
               bits_stored: int = 12, photometric: str = "MONOCHROME2",
               window: tuple[float, float] | None = None, view: str | None = "PA",
               study_uid: str | None = None, patient_id: str = "PAT-000", study_date: str = "",
               attributes: dict | None = None, private: dict[int, str] | None = None,
               rle: bool = False) -> Path:
    """A single-frame grayscale DICOM file (Explicit VR LE, or RLE Lossless when ``rle``).
    ``attributes``: extra keyword -> value; ``private``: element -> string value in a private
    block of group 0x0009 (creator "ACME PHI")."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (
        ExplicitVRLittleEndian,
        RLELossless,
        SecondaryCaptureImageStorage,
        generate_uid,
    )

    if pixels is None:
        yy, xx = np.mgrid[0:rows, 0:cols]
        pixels = ((yy * 37 + xx * 11) % (2**bits_stored)).astype(np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID, ds.StudyDate, ds.Modality = patient_id, study_date, "CR"
    if view:
        ds.ViewPosition = view
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits_stored, bits_stored - 1
    ds.PixelRepresentation = 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    for keyword, value in (attributes or {}).items():
        setattr(ds, keyword, value)
    if private:
        block = ds.private_block(0x0009, "ACME PHI", create=True)
        for offset, value in private.items():
            block.add_new(offset, "LO", value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    if rle:
        ds.compress(RLELossless)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def make_png(path: Path, *, size: tuple[int, int] = (24, 32), seed: int = 0,
             mode: str = "L") -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = rng.integers(0, 255, size=size, dtype=np.uint8)
    img = PILImage.fromarray(pixels)
    img.convert(mode).save(path, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg")
                           else "PNG")
    return path


def write_manifest(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    import csv

    columns = columns or ["study_id", "image", "report", "view", "patient_id", "study_date",
                          "split"]
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


# --- running things: an ingest in-process, the store's row counts, an app page, the browser ---

PAGES = Path(__file__).resolve().parents[1] / "curation_app" / "pages"


def run_ingest(db_url: str, data_dir: Path, *source: str, extra: tuple[str, ...] = ()) -> int:
    """``python -m pipeline.ingest`` in this process (no workers, no progress bar)."""
    from pipeline.ingest import cli

    return cli.main(["--db", db_url, "--data-dir", str(data_dir), "--workers", "0",
                     "--no-progress", *extra, *source])


def count_ingested(db_url: str) -> dict[str, int]:
    """Rows of the tables an ingest writes, by table class name."""
    from sqlmodel import func

    from db.engine import get_engine
    from db.models import IngestError

    with Session(get_engine(db_url)) as s:
        return {m.__name__: s.exec(select(func.count()).select_from(m)).one()
                for m in (Study, Image, Report, IngestError)}


def run_page(name: str, **query_params):
    """Run one curation_app page file under Streamlit's AppTest; fails on an exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30)
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def wait_idle(page, timeout_ms: int = 30_000) -> None:
    """Playwright: wait until no script run is in flight (a click during a rerun can be dropped)."""
    page.get_by_test_id("stStatusWidget").wait_for(state="hidden", timeout=timeout_ms)


# --- accounts and assignments (sign-in, blind double review) --------------------------------

TEST_PASSWORD = "correct horse battery"


def make_account(session: Session, *, name: str = "Dr A",
                 role: ReviewerRole = ReviewerRole.reviewer, password: str = TEST_PASSWORD):
    """A local account that signs in with ``password``; returns its Actor."""
    from db import queries

    reviewer = queries.create_account(name, role, password=password, actor=queries.OPERATOR,
                                      session=session)
    return queries.actor_of(reviewer)


def assign(session: Session, report_id: int, *actors) -> None:
    """Assign the report to each actor (two: a blind double review)."""
    from db.models import Assignment

    for actor in actors:
        session.add(Assignment(report_id=report_id, reviewer_id=actor.id))
    session.flush()


def make_reviewed_corpus(session: Session, *, n: int = 12, double_every: int = 2,
                         disagree_every: int = 4, data_dir: Path | None = None):
    """``n`` reports, each with three proposals; every ``double_every``-th is double-reviewed
    by A and B (B rejects the last proposal on every ``disagree_every``-th, a dispute), the
    rest single-reviewed by A. Returns (A, B, reports)."""
    from db import queries

    a, b = make_account(session, name="Dr A"), make_account(session, name="Dr B")
    reports = []
    for i in range(n):
        report, findings = make_reviewable_report(session, key=f"c{i}", data_dir=data_dir)
        double = i % double_every == 0
        assign(session, report.id, *((a, b) if double else (a,)))
        for actor in (a, b) if double else (a,):
            for j, f in enumerate(findings):
                action = ("reject" if actor is b and j == 2 and i % disagree_every == 0
                          else "accept")
                assert queries.answer_finding(f.id, action, seen_version=0, actor=actor,
                                              session=session).ok
        reports.append(report)
    return a, b, reports


# --- the browser: widgets once the page is quiet, signing in --------------------------------

_COPIES = """sel => Array.from(document.querySelectorAll(sel))
    .map(e => ({enabled: !e.disabled, visible: e.offsetParent !== null}))"""


def settled(page, key: str, inner: str = "button", timeout_s: float = 30):
    """The widget keyed ``key`` once the page is quiet: one visible, enabled copy. A rerun
    that shifts elements (a message above them) briefly shows a stale copy next to the new one."""
    selector = f".st-key-{key} {inner}"
    deadline = time.monotonic() + timeout_s
    copies: list = []
    while time.monotonic() < deadline:
        wait_idle(page)
        copies = page.evaluate(_COPIES, selector)
        if copies == [{"enabled": True, "visible": True}]:
            page.wait_for_timeout(200)
            if len(page.evaluate(_COPIES, selector)) == 1:
                return page.locator(selector)
        page.wait_for_timeout(200)
    raise AssertionError(f"widget {key!r} never settled: {copies}")


def sign_in(page, base: str, name: str) -> None:
    page.goto(base, wait_until="domcontentloaded")
    settled(page, "login_name", "input").fill(name)
    settled(page, "login_password", "input").fill(TEST_PASSWORD)
    settled(page, "login").click()
    page.get_by_text(f"Signed in as {name}").wait_for(timeout=30_000)
    wait_idle(page)
    deadline = time.monotonic() + 20  # the session cookie is written by the next render
    while not any(c["name"] == "medfilip_session" and c["value"]
                  for c in page.context.cookies()):
        assert time.monotonic() < deadline, "the session cookie was never set"
        page.wait_for_timeout(200)


# --- training runs (the Runs page and the evaluation) ----------------------------------------


def make_training_run(session: Session, *, name: str = "run-a", config: dict | None = None,
                      metrics: dict | None = None, status: str = "finished",
                      checkpoint_path: str | None = None):
    """A TrainingRun row as ``python -m pipeline.train`` leaves it (metrics: its final JSON)."""
    import json

    from db.models import TrainingRun

    run = TrainingRun(name=name, config_json=json.dumps(config or {"model": "tiny-rn"}),
                      snapshot_sha256=_sha(name), status=status, checkpoint_path=checkpoint_path,
                      metrics_json=json.dumps(metrics) if metrics is not None else None)
    session.add(run)
    session.flush()
    return run


def train_tiny_run(db_url: str, data_dir: Path, out: Path, *extra: str, epochs: int = 2) -> Path:
    """``python -m pipeline.train`` in this process: a tiny-rn run of a few CPU seconds on the
    store's train split (see ``make_training_store``)."""
    from pipeline.train import cli as train_cli

    assert train_cli.main(["--db", db_url, "--data-dir", str(data_dir), "--out", str(out),
                           "--model", "tiny-rn", "--epochs", str(epochs), "--batch-size", "8",
                           "--workers", "0", "--no-progress", "--device", "cpu",
                           *extra]) == 0
    return out


# --- indexes (python -m pipeline.index) -------------------------------------------------------


def make_indexed_run(db_url: str, data_dir: Path, out: Path, *, n: int = 24) -> Path:
    """A training store of ``n`` studies, a tiny run trained on it and the run's index."""
    from db.engine import get_engine
    from pipeline.index import cli as index_cli

    with Session(get_engine(db_url)) as s:
        make_training_store(s, data_dir, n=n)
        s.commit()
    train_tiny_run(db_url, data_dir, out, "--negatives", "use")
    assert index_cli.main(["--run", str(out), "--db", db_url, "--no-progress"]) == 0
    return out


def write_synthetic_index(db_url: str, run_dir: Path, study_ids: list[int], *, n_labels: int,
                          dim: int = 64, sentence_dim: int = 32, seed: int = 0) -> Path:
    """An index folder as ``python -m pipeline.index`` writes it, of random unit vectors: the
    given studies, ``n_labels`` label texts over the vocabulary's categories (1-3 per study),
    and its EmbeddingIndex row. For page tests at a scale no tiny run reaches quickly."""
    import json

    from db import queries
    from db.engine import session_scope
    from pipeline import vocab
    from pipeline.index import files
    from pipeline.index.projection import fit_map, save_map
    from pipeline.index.vectors import build_index

    rng = np.random.default_rng(seed)

    def unit(*shape):
        x = rng.standard_normal(shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    cats = list(vocab.category_ids())
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps({"model": "tiny-rn"}))
    folder = files.index_dir(run_dir)
    folder.mkdir(exist_ok=True)
    ids = np.asarray(sorted(study_ids), np.int64)
    vectors = unit(len(ids), dim)
    index, spec = build_index(vectors, ids)
    files.write_index(index, spec, folder / "images.faiss")
    files.write_npz(folder / "images.npz", study_ids=ids, vectors=vectors)
    groups = [cats[i % len(cats)] for i in range(n_labels)]
    texts = [f"label {i} of {g.replace('_', ' ')}" for i, g in enumerate(groups)]
    pairs = [(s, int(lab)) for s in ids for lab in rng.choice(n_labels, rng.integers(1, 4),
                                                              replace=False)]
    pair = np.asarray(pairs, np.int64)
    labels = files.LabelSet(texts, groups, unit(n_labels, dim), unit(n_labels, sentence_dim),
                            pair[:, 0], pair[:, 1])
    files.write_labels(folder, labels)
    label_index, label_spec = build_index(labels.vectors)
    files.write_index(label_index, label_spec, folder / "labels.faiss")
    files.write_prompts(folder, files.Prompts(cats, unit(len(cats), dim), unit(len(cats), dim)))
    xy, projection = fit_map(vectors)
    save_map(folder, ids, xy, projection)
    manifest = files.Manifest(run=run_dir.name, training_run_id=None, checkpoint="none",
                              checkpoint_sha256="0" * 64, snapshot_sha256="", built_at="",
                              updated_at=None, images=spec.__dict__, labels=label_spec.__dict__,
                              map_method=projection.method, sentence_encoder="random",
                              counts={"studies": len(ids), "labels": n_labels})
    files.write_manifest(folder, manifest)
    with session_scope(db_url) as s:
        queries.record_embedding_index(session=s, training_run_id=None, kind="image",
                                       path=str(folder.resolve()), dim=dim, count=len(ids),
                                       spec=spec.__dict__, checkpoint_sha256="0" * 64,
                                       snapshot_sha256="", rebuilt=True)
    return run_dir
