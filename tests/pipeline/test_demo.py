"""The demo corpus generator: layout, manifest, DICOM share, splits, holdout, determinism, CLI."""

from __future__ import annotations

import csv
import hashlib
import json

import numpy as np
import pydicom
import pytest
from PIL import Image

from db.models import Presence, Severity, Side
from pipeline.demo import cli as demo
from pipeline.demo.casemix import RENDERED
from pipeline.demo.cli import main
from pipeline.demo.generate import MANIFEST_COLUMNS, generate_corpus, read_truth

REGIONS = {"upper", "middle", "lower", "apical", "basilar", "perihilar", "retrocardiac",
           "costophrenic", "hilar"}


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    summary = generate_corpus(out, 60, seed=2, size=64, dicom_share=0.3)
    return out, summary


def test_layout_and_manifest(corpus):
    out, summary = corpus
    with open(out / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == MANIFEST_COLUMNS
        rows = list(reader)
    assert len(rows) == summary.n_studies == 60
    for row in rows:
        assert (out / row["image"]).is_file() and (out / row["report"]).is_file()
        assert row["image"].endswith((".png", ".dcm")) and row["view"] in ("PA", "AP")
        assert row["split"] in ("train", "val", "test") and row["study_date"][:2] == "20"
    assert sum(r["image"].endswith(".dcm") for r in rows) == summary.n_dicom > 0
    assert json.loads((out / "corpus.json").read_text())["seed"] == 2


def test_truth_lines_use_the_vocabulary(corpus):
    out, _ = corpus
    truth = read_truth(out)
    assert [t["study_id"] for t in truth] == sorted(t["study_id"] for t in truth)
    allowed = set(RENDERED) | {"lung_opacity"}
    for line in truth:
        assert set(line) == {"study_id", "patient_id", "split", "view", "image", "findings"}
        img = Image.open(out / line["image"])
        assert img.mode == "L" and img.size == (64, 64)
        for f in line["findings"]:
            assert set(f) == {"category", "presence", "severity", "side", "region"}
            assert f["category"] in allowed and Presence(f["presence"])
            assert f["severity"] is None or Severity(f["severity"])
            assert f["side"] is None or Side(f["side"])
            assert f["region"] is None or f["region"] in REGIONS
    presences = {f["presence"] for t in truth for f in t["findings"]}
    assert {"present", "absent"} <= presences
    assert sum(not any(f["presence"] != "absent" for f in t["findings"]) for t in truth) >= 8


def test_splits_are_by_patient(corpus):
    out, _ = corpus
    split_of: dict[str, set[str]] = {}
    for line in read_truth(out):
        split_of.setdefault(line["patient_id"], set()).add(line["split"])
    assert all(len(s) == 1 for s in split_of.values())
    assert len(split_of) < 60  # some patients have follow-up studies


def test_dicom_files_have_a_realistic_header(corpus):
    out, _ = corpus
    rows = list(csv.DictReader(open(out / "manifest.csv", newline="")))
    photometrics = set()
    for row in (r for r in rows if r["image"].endswith(".dcm")):
        ds = pydicom.dcmread(out / row["image"])
        assert str(ds.PatientName).startswith("DEMO^PATIENT^") and ds.PatientID.startswith("DEMO-")
        assert ds.Modality in ("CR", "DX") and ds.ViewPosition == row["view"]
        assert (ds.BitsAllocated, ds.BitsStored) == (16, 12) and ds.InstitutionName
        assert ds.StudyDate == row["study_date"].replace("-", "")
        block = ds.private_block(0x0011, "MEDFILIP DEMO")
        assert block[0x01].value.startswith("DEMO-ENCOUNTER-")
        px = ds.pixel_array.astype(float) / 4095
        if ds.PhotometricInterpretation == "MONOCHROME1":
            px = 1 - px
        photometrics.add(ds.PhotometricInterpretation)
        png = np.asarray(Image.open(out / f"images/{row['study_id']}.png"), float) / 255
        assert np.abs(px - png).max() < 0.01
    # the corpus is seeded: seed 2 draws both kinds (about a third MONOCHROME1), so each kind's
    # pixels were checked against its display PNG above
    assert photometrics == {"MONOCHROME1", "MONOCHROME2"}


def test_same_seed_same_bytes_whatever_the_workers(tmp_path):
    generate_corpus(tmp_path / "a", 12, seed=7, size=64, dicom_share=0.5, workers=1)
    generate_corpus(tmp_path / "b", 12, seed=7, size=64, dicom_share=0.5, workers=2)
    generate_corpus(tmp_path / "c", 12, seed=8, size=64, dicom_share=0.5, workers=1)
    digest = _digest(tmp_path / "a")
    assert any(name.endswith(".dcm") for name in digest)
    assert digest == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


def test_holdout_category_stays_out_of_train_and_val(tmp_path):
    generate_corpus(tmp_path, 120, seed=4, size=64, holdout=("pneumothorax",), uniform_mix=True)
    truth = read_truth(tmp_path)
    held = [t for t in truth if any(f["category"] == "pneumothorax" for f in t["findings"])]
    assert any(f["presence"] != "absent" for t in held for f in t["findings"]
               if f["category"] == "pneumothorax")
    for line in truth:
        text = (tmp_path / "reports" / f"{line['study_id']}.txt").read_text().lower()
        if line["split"] != "test":
            assert "pneumothorax" not in text
            assert all(f["category"] != "pneumothorax" for f in line["findings"])


def test_unknown_holdout_fails_loudly(tmp_path):
    with pytest.raises(ValueError, match="holdout"):
        generate_corpus(tmp_path, 2, seed=0, holdout=("not_a_category",))
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--holdout-category", "nope"])


def test_every_flag_has_help():
    parser = demo.build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} lacks help"
    assert "python -m pipeline.demo" in demo.__doc__


def test_main_writes_corpus_and_contact_sheet(tmp_path, capsys):
    sheet = tmp_path / "sheet.png"
    rc = main(["--out", str(tmp_path / "c"), "--n", "40", "--seed", "1", "--size", "64",
               "--workers", "1", "--quiet", "--contact-sheet", str(sheet)])
    assert rc == 0 and sheet.is_file() and (tmp_path / "c" / "manifest.csv").is_file()
    assert Image.open(sheet).size[0] == 6 * 256
    assert "40 studies" in capsys.readouterr().out
