"""Evaluation queries: which studies of a split are labelled, their label findings, training runs
and the evaluation stored on a run."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from db import queries
from db.engine import session_scope
from db.models import Assignment, FindingStatus, Presence, Report
from tests.factories import make_finding, make_reviewer, make_study, make_training_run


def _report_id(s, study) -> int:
    return s.exec(select(Report.id).where(Report.study_id == study.id)).one()


@pytest.fixture
def store(db_url, data_dir):
    """Six studies, one per labelling case (see each comment)."""
    ids = {}
    with session_scope(db_url) as s:
        reviewer = make_reviewer(s)

        def study(key, split="test", image=True):
            st = make_study(s, key=key, split=split, data_dir=data_dir if image else None)
            ids[key] = st.id
            return _report_id(s, st)

        # extracted, nothing reviewed: a label only with --include-proposed
        r = study("proposed")
        queries.replace_proposed_findings(r, "rules", "1", [
            {"category": "pleural_effusion", "presence": "present", "severity": "mild"}], session=s)
        # fully reviewed: one accepted, one rejected (the rejected one never counts)
        r = study("reviewed")
        make_finding(s, report_id=r, status=FindingStatus.accepted, side="left")
        make_finding(s, report_id=r, category="pneumothorax", presence=Presence.absent,
                     status=FindingStatus.rejected)
        # extracted as normal, the reviewer completed it: a label (all absent) either way
        r = study("normal")
        queries.replace_proposed_findings(r, "rules", "1", [], session=s)
        s.add(Assignment(reviewer_id=reviewer.id, report_id=r, completed_at=datetime.now(UTC)))
        # reviewed but without an image: nothing to embed
        r = study("no-image", image=False)
        make_finding(s, report_id=r, status=FindingStatus.accepted)
        # half reviewed: one finding still proposed
        r = study("half")
        make_finding(s, report_id=r, category="edema", status=FindingStatus.edited)
        make_finding(s, report_id=r, category="cardiomegaly")
        # the training split
        r = study("train", split="train")
        make_finding(s, report_id=r, category="cardiomegaly", status=FindingStatus.added)
        make_finding(s, report_id=r, category="edema", presence=Presence.absent,
                     status=FindingStatus.accepted)
        make_finding(s, report_id=r, category="mass")
    return db_url, ids


def test_curated_labels_are_fully_reviewed_reports(store):
    url, ids = store
    with session_scope(url) as s:
        labelled = queries.list_labelled_studies("test", session=s)
        rows = queries.list_split_findings(labelled, session=s)
    assert labelled == [ids["reviewed"], ids["normal"]]
    assert [(r.study_id, r.category, r.presence, r.side) for r in rows] == [
        (ids["reviewed"], "pleural_effusion", "present", "left")]


def test_include_proposed_adds_extracted_and_half_reviewed_reports(store):
    url, ids = store
    with session_scope(url) as s:
        labelled = queries.list_labelled_studies("test", session=s, include_proposed=True)
        rows = queries.list_split_findings(labelled, session=s, include_proposed=True)
    assert labelled == [ids[k] for k in ("proposed", "reviewed", "normal", "half")]
    got = {(r.study_id, r.category, r.severity) for r in rows}
    assert got == {(ids["proposed"], "pleural_effusion", "mild"),
                   (ids["reviewed"], "pleural_effusion", None),
                   (ids["half"], "edema", None), (ids["half"], "cardiomegaly", None)}


def test_positive_counts_of_a_split(store):
    url, ids = store
    with session_scope(url) as s:
        assert queries.count_positive_findings("train", session=s) == {"cardiomegaly": 1}
        assert queries.count_positive_findings("train", session=s, include_proposed=True) == {
            "cardiomegaly": 1, "mass": 1}
        assert queries.studies_with_images(list(ids.values()), session=s) == (
            set(ids.values()) - {ids["no-image"]})


def test_training_runs_and_stored_evaluation(db_url):
    with session_scope(db_url) as s:
        old = make_training_run(s, name="old", metrics={"final_loss": 0.5, "steps": 10})
        old.started_at = datetime.now(UTC) - timedelta(days=1)
        new = make_training_run(s, name="new", status="running")
    with session_scope(db_url) as s:
        assert [r.name for r in queries.list_training_runs(session=s)] == ["new", "old"]
        assert queries.get_training_run(session=s, name="old").id == old.id
        assert queries.get_training_run(session=s, run_id=new.id).name == "new"
        assert queries.get_training_run(session=s, name="nope") is None
        queries.set_run_evaluation(old.id, {"mean": {"auc_seen": 0.9}}, session=s)
        queries.set_run_evaluation(new.id, {"mean": {"auc_seen": 0.7}}, session=s)
    with session_scope(db_url) as s:
        # the training's own figures stay beside the evaluation
        assert json.loads(queries.get_training_run(session=s, name="old").metrics_json) == {
            "final_loss": 0.5, "steps": 10, "evaluation": {"mean": {"auc_seen": 0.9}}}
        assert json.loads(queries.get_training_run(session=s, name="new").metrics_json) == {
            "evaluation": {"mean": {"auc_seen": 0.7}}}
        with pytest.raises(LookupError):
            queries.set_run_evaluation(999, {}, session=s)
