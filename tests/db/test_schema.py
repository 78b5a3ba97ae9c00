"""Schema round-trips: every table, migrated by Alembic, stores and returns every column."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect
from sqlmodel import Session, SQLModel, select

from db import models as m


def _rows() -> list[tuple[type[SQLModel], dict]]:
    """One fully populated row per table, parents before children (ids are fixed)."""
    at = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    return [
        (m.Reviewer, {"id": 1, "name": "Dr. R", "role": m.ReviewerRole.adjudicator,
                      "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$x$y",
                      "oidc_subject": "r@example.org", "disabled": True, "created_at": at}),
        (m.Study, {"id": 1, "study_key": "s" * 32, "patient_key": "p" * 32, "dataset": "demo",
                   "split": "val", "study_date": date(2019, 1, 2), "created_at": at}),
        (m.Image, {"id": 1, "study_id": 1, "image_key": "i" * 32, "path": "images/i.png",
                   "display_path": "display/i.png", "thumb_path": "thumbs/i.png", "view": "PA",
                   "width": 1841, "height": 1955, "bits_stored": 15,
                   "photometric": "MONOCHROME1", "window_center": 17767.0,
                   "window_width": 30000.0, "source_format": "dicom", "pixel_sha256": "a" * 64}),
        (m.Report, {"id": 1, "study_id": 1, "text": "FINDINGS: Clear.\nIMPRESSION: Normal.",
                    "findings": "Clear.", "impression": "Normal.", "indication": "Cough",
                    "comparison": "None", "text_sha256": "b" * 64}),
        (m.Finding, {"id": 1, "report_id": 1, "category": "pleural_effusion",
                     "presence": m.Presence.uncertain, "severity": m.Severity.mild,
                     "side": m.Side.left, "region": "basilar", "evidence_start": 10,
                     "evidence_end": 16, "evidence_text": "Clear.", "extractor": "llm",
                     "extractor_version": "1", "prompt_version": "p2", "model_name": "m",
                     "status": m.FindingStatus.edited, "reviewer_id": 1, "version": 3,
                     "created_at": at, "updated_at": at}),
        (m.KnowledgeEntry, {"id": 1, "category": "edema", "subclass": "severity:severe",
                            "explanation": "Bat-wing opacities.",
                            "source": m.KnowledgeSource.llm_draft,
                            "status": m.KnowledgeStatus.approved, "reviewer_id": 1,
                            "version": 2, "updated_at": at}),
        (m.Assignment, {"id": 1, "reviewer_id": 1, "report_id": 1, "created_at": at,
                        "completed_at": at}),
        (m.ReviewAnswer, {"id": 1, "report_id": 1, "finding_id": 1, "reviewer_id": 1,
                          "status": m.FindingStatus.edited, "category": "edema",
                          "presence": m.Presence.absent, "severity": m.Severity.severe,
                          "side": m.Side.right, "region": "upper", "evidence_start": 10,
                          "evidence_end": 16, "evidence_text": "Clear.", "version": 2,
                          "created_at": at, "updated_at": at}),
        (m.Settlement, {"id": 1, "report_id": 1, "state": "settled", "how": "adjudicated",
                        "answer_reviewer_id": 1, "adjudicator_id": 1, "version": 3,
                        "updated_at": at}),
        (m.ReviewEvent, {"id": 1, "reviewer_id": 1, "at": at, "entity": "finding",
                         "entity_id": 1, "action": "edit", "before_json": '{"a": 1}',
                         "after_json": '{"a": 2}'}),
        (m.TrainingRun, {"id": 1, "name": "run-1", "config_json": "{}",
                         "snapshot_sha256": "c" * 64, "metrics_json": '{"auc": 0.9}',
                         "checkpoint_path": "runs/run-1/ckpt.pt", "status": "done",
                         "started_at": at, "finished_at": at}),
        (m.EmbeddingIndex, {"id": 1, "training_run_id": 1, "kind": "image",
                            "path": "runs/run-1/index", "dim": 512, "count": 10,
                            "created_at": at, "spec_json": '{"kind": "flat"}',
                            "checkpoint_sha256": "9" * 64, "snapshot_sha256": "8" * 64,
                            "updated_at": at}),
        (m.IngestError, {"id": 1, "dataset": "openi", "item": "ecgen-radiology/1.xml",
                         "message": "report without text", "created_at": at,
                         "subject_key": "f" * 32, "resolved_at": at}),
        (m.LLMCall, {"id": 1, "cache_key": "d" * 64, "prompt_version": "p2", "model_name": "m",
                     "report_sha256": "e" * 64, "response_json": "{}", "prompt_tokens": 5,
                     "completion_tokens": 7, "latency_ms": 12.5, "created_at": at}),
        (m.ReportExtraction, {"id": 1, "report_id": 1, "extractor": "rules",
                              "extractor_version": "1-abc", "n_findings": 0, "created_at": at}),
        (m.ExtractionError, {"id": 1, "report_id": 1, "extractor": "llm",
                             "extractor_version": "1", "message": "invalid JSON",
                             "created_at": at}),
    ]


def test_every_table_has_a_round_trip_row(engine):
    tested = {model.__tablename__ for model, _ in _rows()}
    assert tested == set(SQLModel.metadata.tables)
    assert tested <= set(inspect(engine).get_table_names())  # the migration created them all


def test_every_column_round_trips(engine):
    with Session(engine) as session:
        for model, values in _rows():
            session.add(model(**values))
            session.flush()
        session.commit()
    with Session(engine) as session:  # a fresh session: values come back from the file
        for model, values in _rows():
            row = session.exec(select(model)).one()
            stored = {k: getattr(row, k) for k in values}
            assert stored == values, model.__name__
            assert set(values) == set(model.model_fields), f"{model.__name__} columns untested"


def test_unique_keys_are_enforced(engine):
    from sqlalchemy.exc import IntegrityError

    with Session(engine) as session:
        session.add(m.Study(study_key="k" * 32, patient_key="p", dataset="d"))
        session.commit()
        session.add(m.Study(study_key="k" * 32, patient_key="q", dataset="d"))
        with pytest.raises(IntegrityError):
            session.commit()
