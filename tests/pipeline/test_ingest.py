"""Ingest end to end through ``main([...])``: the folder adapter, idempotency, bad items, CLI."""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlmodel import Session, func, select

from db.engine import get_engine
from db.models import Image, IngestError, Report, Study
from pipeline.ingest import cli as ingest
from pipeline.ingest import run as ingest_run
from pipeline.ingest.deid import Pseudonymizer
from pipeline.settings import get_settings
from tests.factories import count_ingested as counts
from tests.factories import make_dicom, make_png, write_manifest
from tests.factories import run_ingest as run


def errors(db_url: str) -> list[str]:
    with Session(get_engine(db_url)) as s:
        return [f"{e.item}: {e.message}" for e in s.exec(select(IngestError)).all()]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three studies of two patients: PNG, JPEG and DICOM images, inline and .txt reports."""
    root = tmp_path / "corpus"
    make_png(root / "img/a1.png", seed=1)
    make_png(root / "img/a2.jpg", seed=2)
    make_dicom(root / "img/b1.dcm", window=(2000, 4000))
    make_png(root / "img/c1.png", seed=3)
    (root / "reports").mkdir()
    (root / "reports/b.txt").write_text("INDICATION: Cough.\nFINDINGS: Small left effusion.\n"
                                        "IMPRESSION: Effusion.")
    write_manifest(root / "manifest.csv", [
        {"study_id": "A", "image": "img/a1.png", "report": "FINDINGS: Clear lungs.\n"
         "IMPRESSION: Normal.", "view": "PA", "patient_id": "P1", "study_date": "2020-03-01",
         "split": "train"},
        {"study_id": "A", "image": "img/a2.jpg", "report": "", "view": "lateral",
         "patient_id": "P1", "study_date": "2020-03-01", "split": "train"},
        {"study_id": "B", "image": "img/b1.dcm", "report": "reports/b.txt", "view": "",
         "patient_id": "P1", "study_date": "2020-03-15", "split": "val"},
        {"study_id": "C", "image": "img/c1.png", "report": "No acute disease.", "view": "AP",
         "patient_id": "P2", "study_date": "", "split": ""},
    ])
    return root


def test_folder_manifest_stores_studies_images_and_reports(db_url, data_dir, corpus, capsys):
    assert run(db_url, data_dir, "folder", str(corpus)) == 0
    assert "3 items: 3 ingested, 0 unchanged, 0 failed" in capsys.readouterr().out
    assert counts(db_url) == {"Study": 3, "Image": 4, "Report": 3, "IngestError": 0}
    pseudo = Pseudonymizer(get_settings().pseudonym_salt.get_secret_value())
    with Session(get_engine(db_url)) as s:
        studies = {st.study_key: st for st in s.exec(select(Study)).all()}
        a, b = studies[pseudo.study_key("corpus", "A")], studies[pseudo.study_key("corpus", "B")]
        c = studies[pseudo.study_key("corpus", "C")]
        assert a.patient_key == b.patient_key != c.patient_key
        assert a.study_date != date(2020, 3, 1)  # shifted ...
        assert (b.study_date - a.study_date).days == 14  # ... by one offset per patient
        assert (a.split, b.split, c.split) == ("train", "val", None)
        report_b = s.exec(select(Report).where(Report.study_id == b.id)).one()
        assert report_b.findings == "Small left effusion." and report_b.indication == "Cough."
        assert report_b.impression == "Effusion." and report_b.text.startswith("INDICATION:")
        images = s.exec(select(Image)).all()
        assert {i.view for i in images} == {"PA", "LATERAL", "AP"}
        dicom = next(i for i in images if i.source_format == "dicom")
        assert (dicom.width, dicom.height, dicom.bits_stored) == (40, 32, 12)
        assert dicom.view == "PA"  # from the DICOM header when the manifest has none
        for image in images:
            for rel in (image.path, image.display_path, image.thumb_path):
                assert not Path(rel).is_absolute()
                with PILImage.open(data_dir / rel) as im:
                    assert im.size[0] <= image.width and im.format == "PNG"
            with PILImage.open(data_dir / image.path) as im:
                assert np.asarray(im).shape == (image.height, image.width)


def test_second_run_adds_nothing(db_url, data_dir, corpus, capsys):
    assert run(db_url, data_dir, "folder", str(corpus)) == 0
    before = counts(db_url)
    capsys.readouterr()
    assert run(db_url, data_dir, "folder", str(corpus)) == 0
    assert counts(db_url) == before
    assert "0 ingested, 3 unchanged, 0 failed" in capsys.readouterr().out


def test_new_image_of_a_known_study_is_added(db_url, data_dir, corpus):
    run(db_url, data_dir, "folder", str(corpus))
    make_png(corpus / "img/c2.png", seed=9)
    manifest = corpus / "manifest.csv"
    manifest.write_text(manifest.read_text() + "C,img/c2.png,No acute disease.,PA,P2,,\n")
    run(db_url, data_dir, "folder", str(corpus))
    assert counts(db_url) == {"Study": 3, "Image": 5, "Report": 3, "IngestError": 0}


def test_bad_items_become_specific_errors_and_the_run_goes_on(db_url, data_dir, tmp_path):
    root = tmp_path / "bad"
    make_png(root / "ok.png")
    (root / "empty.png").parent.mkdir(exist_ok=True)
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("not an image at all")
    dcm = make_dicom(root / "trunc.dcm", rows=64, cols=64).read_bytes()
    (root / "trunc.dcm").write_bytes(dcm[:-500])
    (root / "manifest.csv").write_text(
        "study_id,image,report,split\n"
        "S1,ok.png,FINDINGS: fine.,train\n"
        "S2,missing.png,FINDINGS: lost image.,\n"
        "S3,empty.png,FINDINGS: empty image.,\n"
        "S4,notes.png,FINDINGS: text file.,\n"
        "S5,trunc.dcm,FINDINGS: truncated.,\n"
        "S6,ok.png,   ,\n"
        "S7,ok.png,FINDINGS: x.,train,surplus\n"
        "S8,ok.png,FINDINGS: x.,holdout\n"
        ",ok.png,FINDINGS: no study id.,\n")
    assert run(db_url, data_dir, "folder", str(root)) == 3
    found = "\n".join(errors(db_url))
    for expected in ("image file not found", "empty file (0 bytes)",
                     "not a DICOM, PNG or JPEG file", "truncated pixel data",
                     "line 7: report without text", "line 8: wrong number of fields",
                     "line 9: unknown split", "line 10: empty study_id"):
        assert expected in found, expected
    assert len(errors(db_url)) == 8
    # Studies whose report survived are kept; S6 had only an image, of ok.png, already stored.
    assert counts(db_url)["Study"] == 5 and counts(db_url)["Report"] == 5
    assert run(db_url, data_dir, "folder", str(root)) == 3
    assert len(errors(db_url)) == 8  # a rerun records the same failures once


def test_exit_status_is_1_only_when_nothing_could_be_ingested(db_url, data_dir, tmp_path):
    root = tmp_path / "allbad"
    root.mkdir()
    (root / "manifest.csv").write_text("study_id,image,report\nS1,missing.png,\n")
    assert run(db_url, data_dir, "folder", str(root)) == 1
    (root / "manifest.csv").write_text("wrong,header\n1,2\n")
    assert run(db_url, data_dir, "folder", str(root)) == 1
    assert any("manifest lacks columns" in e for e in errors(db_url))


def test_image_folder_without_manifest_groups_dicoms_by_study(db_url, data_dir, tmp_path):
    root = tmp_path / "images"
    make_dicom(root / "x/1.dcm", study_uid="1.2.3.4.100", patient_id="MRN-9")
    make_dicom(root / "x/2.dcm", study_uid="1.2.3.4.100", patient_id="MRN-9", view="LL",
               rle=True)
    make_dicom(root / "y/3.dcm", study_uid="1.2.3.4.200", patient_id="MRN-9")
    make_png(root / "z.png")
    (root / "labels.csv").write_text("not,an,image\n")  # skipped: not an image suffix
    assert run(db_url, data_dir, "folder", str(root)) == 0
    assert counts(db_url) == {"Study": 3, "Image": 4, "Report": 0, "IngestError": 0}
    with Session(get_engine(db_url)) as s:
        per_study = sorted(s.exec(select(func.count()).select_from(Image)
                                  .group_by(Image.study_id)).all())
        assert per_study == [1, 1, 2]
        assert len({st.patient_key for st in s.exec(select(Study)).all()}) == 2


def test_dataset_and_split_flags(db_url, data_dir, corpus):
    assert run(db_url, data_dir, "folder", str(corpus),
               extra=("--dataset", "demo", "--split", "test")) == 0
    with Session(get_engine(db_url)) as s:
        rows = s.exec(select(Study.dataset, Study.split)).all()
    assert {d for d, _ in rows} == {"demo"}
    assert sorted(sp for _, sp in rows) == ["test", "train", "val"]  # only C had no split


def _actions(parser: argparse.ArgumentParser):
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            yield from action._choices_actions
            for sub in action.choices.values():
                yield from _actions(sub)


def test_every_flag_and_source_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        ingest.parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "python -m pipeline.ingest" in out and "openi" in out
    missing = [a.dest for a in _actions(ingest.build_parser())
               if not a.help and a.dest != "help"]
    assert not missing


def test_16bit_png_and_colour_jpeg_sources(db_url, data_dir, tmp_path):
    root = tmp_path / "raster"
    root.mkdir()
    deep = (np.arange(20 * 30, dtype=np.uint16).reshape(20, 30) * 100)
    PILImage.fromarray(deep).save(root / "deep.png")  # mode I;16
    make_png(root / "colour.jpg", mode="RGB")
    assert run(db_url, data_dir, "folder", str(root)) == 0
    with Session(get_engine(db_url)) as s:
        images = {i.source_format: i for i in s.exec(select(Image)).all()}
    png, jpeg = images["png"], images["jpeg"]
    with PILImage.open(data_dir / png.path) as im:
        assert np.array_equal(np.asarray(im), deep)  # 16-bit pixels kept exactly
    assert png.bits_stored == 16 and png.display_path != png.path
    with PILImage.open(data_dir / png.display_path) as im:
        assert im.mode == "L" and np.asarray(im).max() == 255
    assert jpeg.bits_stored == 8 and jpeg.display_path == jpeg.path
    with PILImage.open(data_dir / jpeg.path) as im:
        assert im.mode == "L" and im.size == (32, 24)


def _crash_on_marked_file(job):
    import os

    from pipeline.ingest.workers import process_image

    if job.path.name.startswith("crash"):
        os._exit(1)  # what a segfaulting native decoder looks like to the pool
    return process_image(job)


def test_a_dying_worker_costs_only_its_image(tmp_path, monkeypatch):
    from pipeline.ingest.workers import ImageJob

    monkeypatch.setattr(ingest_run, "process_image", _crash_on_marked_file)
    names = ["a.png", "crash.png", "b.png", "c.png"]
    jobs = [ImageJob(make_png(tmp_path / n, seed=i), f"k{i}", tmp_path / "out")
            for i, n in enumerate(names)]
    pool = ingest_run.DecoderPool(2)
    try:
        outcomes = pool.run(jobs)
        assert [o.error for o in outcomes] == [None, "decoder crashed (worker process died)",
                                               None, None]
        assert pool.run(jobs[:1])[0].error is None  # the pool recovers for the next batch
    finally:
        pool.close()
