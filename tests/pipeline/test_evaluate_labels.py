"""Evaluation labels: the CheXpert fold, store labels, and demo truth matched to stored studies
through the salted pseudonyms (pipeline/evaluate/labels.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlmodel import select

from db.engine import session_scope
from db.models import FindingStatus, Presence, Report
from db.queries import LabelRow
from pipeline.demo.generate import generate_corpus, read_truth
from pipeline.evaluate.labels import LabelError, fold, labels_from_store, labels_from_truth
from pipeline.ingest import cli as ingest
from tests.factories import make_finding, make_study


def _row(sid, cat, presence):
    return LabelRow(sid, cat, presence, None, None, None, "accepted")


def test_fold_present_beats_uncertain_beats_absent():
    rows = [_row(1, "edema", "uncertain"), _row(1, "edema", "present"),  # 1
            _row(2, "edema", "absent"), _row(2, "edema", "uncertain"),  # -1
            _row(3, "edema", "absent"), _row(3, "mass", "present"),  # 0, 1
            _row(3, "not_a_category", "present"), _row(9, "edema", "present")]  # ignored
    out = fold(rows, [1, 2, 3, 4], ("edema", "mass"))
    assert out.tolist() == [[1, 0], [-1, 0], [0, 1], [0, 0]]


def test_store_labels_fold_the_curated_findings(db_url, data_dir):
    with session_scope(db_url) as s:
        ids = []
        for key, findings in (("a", [("edema", Presence.present), ("mass", Presence.absent)]),
                              ("b", [("edema", Presence.uncertain)]),
                              ("c", [("pneumothorax", Presence.present)])):
            st = make_study(s, key=key, split="test", data_dir=data_dir)
            rid = s.exec(select(Report.id).where(Report.study_id == st.id)).one()
            for cat, presence in findings:
                make_finding(s, report_id=rid, category=cat, presence=presence,
                             status=FindingStatus.accepted)
            ids.append(st.id)
    labels = labels_from_store(db_url, "test")
    assert labels.study_ids == ids and labels.source == "store"
    assert labels.column("edema").tolist() == [1, -1, 0]
    assert labels.column("pneumothorax").tolist() == [0, 0, 1]
    assert labels.column("mass").tolist() == [0, 0, 0]
    # study a shows edema; b an uncertain edema; c nothing but pneumothorax
    assert labels.others_shown("pneumothorax").tolist() == [True, True, False]
    with pytest.raises(LabelError, match="no labelled val studies.*--include-proposed"):
        labels_from_store(db_url, "val")


@pytest.fixture
def demo_store(tmp_path, db_url, data_dir, monkeypatch):
    """A 16-study demo corpus ingested with a non-default salt."""
    monkeypatch.setenv("MEDFILIP_SALT", "not-the-default")
    out = tmp_path / "demo"
    generate_corpus(out, 16, seed=3, size=64, dicom_share=0.25)
    assert ingest.main(["--db", db_url, "--data-dir", str(data_dir), "--workers", "0",
                        "--no-progress", "folder", str(out)]) == 0
    return out


def test_truth_labels_match_stored_studies_by_pseudonym(demo_store, db_url):
    truth = [t for t in read_truth(demo_store) if t["split"] == "train"]
    labels = labels_from_truth(demo_store / "truth.jsonl", db_url, "train", "not-the-default")
    assert len(labels.study_ids) == len(truth) and labels.unmatched == 0
    assert labels.source == "truth:truth.jsonl"
    for i, t in enumerate(truth):
        for j, cat in enumerate(labels.categories):
            said = {f["presence"] for f in t["findings"] if f["category"] == cat}
            want = 1 if "present" in said else -1 if "uncertain" in said else 0
            assert labels.matrix[i, j] == want, (t["study_id"], cat)
    assert sum(len(v) for v in labels.findings.values()) == sum(len(t["findings"]) for t in truth)


def test_truth_with_another_salt_or_missing_studies(demo_store, db_url, tmp_path):
    with pytest.raises(LabelError, match="none of its .* train studies is in the store.*SALT"):
        labels_from_truth(demo_store / "truth.jsonl", db_url, "train", "wrong-salt")
    lines = [t for t in read_truth(demo_store) if t["split"] == "train"]
    extra = {**lines[0], "study_id": "DEMO-3-S99999"}
    path = tmp_path / "truth.jsonl"
    path.write_text("".join(json.dumps(t) + "\n" for t in [*lines, extra]))
    labels = labels_from_truth(path, db_url, "train", "not-the-default")
    assert labels.unmatched == 1 and len(labels.study_ids) == len(lines)
    with pytest.raises(LabelError, match="no such file"):
        labels_from_truth(tmp_path / "nope.jsonl", db_url, "train", "x")
    (tmp_path / "bad.jsonl").write_text("not json\n")
    with pytest.raises(LabelError, match="not a JSON-lines truth file"):
        labels_from_truth(tmp_path / "bad.jsonl", db_url, "train", "x")
    with pytest.raises(LabelError, match="no study of split 'nope'"):
        labels_from_truth(path, db_url, "nope", "x")
    assert np.all(labels.matrix >= -1)
