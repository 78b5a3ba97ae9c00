"""pipeline.ssm: label texts, which findings train, the embedding cache, the CLI's .npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlmodel import Session, select

from db.engine import get_engine
from db.models import Finding, FindingStatus, KnowledgeStatus, Presence, Report
from pipeline.ssm import LabelError, LabelOptions, build_snapshot, label_embeddings, label_text
from pipeline.ssm import cli as ssm_cli
from pipeline.ssm.labels import explanation_for
from tests.factories import make_finding, make_knowledge, make_study, make_training_store


def test_label_text_drops_empty_parts_and_spells_the_category():
    assert label_text("pleural_effusion", "mild", "left", "basilar", "Fluid.") == \
        "mild left basilar pleural effusion. Fluid."
    assert label_text("cardiomegaly", None, None, None, None) == "cardiomegaly."
    assert label_text("pneumothorax", None, "right", None, "Air.") == "right pneumothorax. Air."


def test_explanation_prefers_severity_then_region_then_category():
    known = {("pneumothorax", ""): "base", ("pneumothorax", "region:apical"): "apex",
             ("pneumothorax", "severity:severe"): "big"}
    assert explanation_for(known, "pneumothorax", "severity", None) == "base"  # no such entry
    assert explanation_for(known, "pneumothorax", "severe", "apical") == "big"
    assert explanation_for(known, "pneumothorax", "mild", "apical") == "apex"
    assert explanation_for(known, "pneumothorax", None, None) == "base"
    assert explanation_for(known, "edema", None, None) is None


def _study(s: Session, key: str, split: str = "train", data_dir: Path | None = None,
           **finding) -> int:
    study = make_study(s, key=key, split=split, data_dir=data_dir, size=8)
    rep = s.exec(select(Report).where(Report.study_id == study.id)).one()
    if finding:
        make_finding(s, report_id=rep.id, **finding)
    return study.id


def _texts(snap, study_id: int) -> list[str]:
    ex = next(e for e in snap.examples if e.study_id == study_id)
    return [snap.texts[i] for i in ex.labels]


@pytest.fixture
def store(engine, data_dir):
    """A study per finding status, one with a negation, and a test-split one."""
    with Session(engine) as s:
        make_knowledge(s, category="pleural_effusion", explanation="Fluid.")
        make_knowledge(s, category="pleural_effusion", subclass="severity:mild",
                       explanation="Small.")
        make_knowledge(s, category="pneumothorax", explanation="Air.")
        ids = {st: _study(s, st, data_dir=data_dir, category="pleural_effusion",
                          severity="mild", side="left", status=FindingStatus(st))
               for st in ("accepted", "edited", "added", "rejected", "proposed")}
        ids["absent"] = _study(s, "absent", data_dir=data_dir, category="pneumothorax",
                               presence=Presence.absent, status=FindingStatus.accepted)
        ids["test"] = _study(s, "test", split="test", data_dir=data_dir, category="pneumothorax",
                             status=FindingStatus.accepted)
        s.commit()
    return ids


def _snapshot(engine, **opts):
    with Session(engine) as s:
        return build_snapshot(s, LabelOptions(**opts))


def test_reviewed_findings_train_rejected_never_proposed_on_request(engine, store):
    snap = _snapshot(engine)
    trained = {e.study_id for e in snap.examples}
    assert {store["accepted"], store["edited"], store["added"]} <= trained
    assert store["proposed"] not in trained and store["test"] not in trained
    assert _texts(snap, store["accepted"]) == ["mild left pleural effusion. Small."]
    assert _texts(snap, store["rejected"]) == ["no finding"]  # reviewed: nothing present
    assert _texts(snap, store["absent"]) == ["no finding"]  # negations dropped by default
    with_proposed = _snapshot(engine, include_proposed=True)
    assert store["proposed"] in {e.study_id for e in with_proposed.examples}


def test_a_half_reviewed_study_is_not_no_finding(engine, data_dir):
    with Session(engine) as s:
        make_knowledge(s, category="pneumothorax", explanation="Air.")
        sid = _study(s, "half", data_dir=data_dir, category="pneumothorax",
                     presence=Presence.absent, status=FindingStatus.accepted)
        rep = s.exec(select(Report).where(Report.study_id == sid)).one()
        make_finding(s, report_id=rep.id, category="edema", status=FindingStatus.proposed)
        s.commit()
    with pytest.raises(LabelError):  # its edema is unreviewed: nothing trainable is left
        _snapshot(engine)
    snap = _snapshot(engine, negatives="use")
    assert _texts(snap, sid) == ["no pneumothorax"]


def test_negatives_become_no_category_texts_in_their_own_group(engine, store):
    snap = _snapshot(engine, negatives="use")
    assert _texts(snap, store["absent"]) == ["no finding", "no pneumothorax"]
    assert snap.groups[snap.texts.index("no pneumothorax")] == "no pneumothorax"


def test_holdout_category_never_trains(engine, store):
    snap = _snapshot(engine, holdout=("pleural_effusion",), negatives="use")
    assert not any("effusion" in t for t in snap.texts)
    assert store["accepted"] not in {e.study_id for e in snap.examples}  # not "no finding"


def test_no_trainable_findings_says_what_include_proposed_would_add(engine):
    with Session(engine) as s:
        _study(s, "p1", category="edema", status=FindingStatus.proposed)
        _study(s, "p2", category="edema", status=FindingStatus.proposed)
        s.commit()
    with pytest.raises(LabelError, match="--include-proposed would add 2 proposed findings"):
        _snapshot(engine)


def test_a_category_without_approved_knowledge_is_named(engine):
    with Session(engine) as s:
        make_knowledge(s, category="edema", status=KnowledgeStatus.draft)
        _study(s, "e1", category="edema", status=FindingStatus.accepted)
        s.commit()
    with pytest.raises(LabelError, match="no approved IKI explanation for edema"):
        _snapshot(engine)
    snap = _snapshot(engine, allow_missing_knowledge=True)
    assert snap.texts == ["edema."] and snap.missing_knowledge == ("edema",)


def test_embeddings_are_cached_by_texts_and_encoder(tmp_path: Path):
    texts = ["mild pleural effusion. Small.", "no finding"]
    first, cached = label_embeddings(texts, cache_dir=tmp_path)
    assert not cached and first.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    again, cached = label_embeddings(texts, cache_dir=tmp_path)
    assert cached and np.array_equal(first, again)
    _, cached = label_embeddings(texts[:1], cache_dir=tmp_path)
    assert not cached  # other texts, other key
    assert len(list(tmp_path.glob("labels-*.npz"))) == 2


def test_cli_writes_texts_embeddings_and_ssm(db_url, engine, data_dir, tmp_path, capsys):
    with Session(engine) as s:
        make_training_store(s, data_dir, n=8)
        s.commit()
    out = tmp_path / "ssm.npz"
    assert ssm_cli.main(["--db", db_url, "--data-dir", str(data_dir), "--out", str(out),
                         "--negatives", "use"]) == 0
    assert "label texts over 7 studies" in capsys.readouterr().out
    z = np.load(out)
    n = len(z["texts"])
    assert z["ssm"].shape == (n, n) and z["embeddings"].shape == (n, 384)
    assert np.allclose(np.diag(z["ssm"]), 1) and set(z["groups"]) >= {"pleural_effusion"}
    i, j = list(z["groups"]).index("pneumothorax"), list(z["groups"]).index("no pneumothorax")
    assert z["ssm"][i, j] == 0  # a negation is never similar to what it denies


def test_cli_bad_input_is_one_line(db_url, tmp_path, capsys):
    assert ssm_cli.main(["--db", db_url, "--out", str(tmp_path / "x.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no trainable findings") and err.count("\n") == 1
    assert not (tmp_path / "x.npz").exists()
    with Session(get_engine(db_url)) as s:
        assert s.exec(select(Finding)).all() == []
