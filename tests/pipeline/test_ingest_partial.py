"""Exit status and partial studies: a study whose image or report failed counts as failed, a
rerun warns again about what still fails, fixed items resolve their errors, and a source that
does not exist is "not found"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlmodel import Session

from db import queries
from db.engine import get_engine
from pipeline.ingest import cli as ingest
from tests.factories import make_png, write_manifest


def _run(db_url: str, data_dir: Path, *source: str) -> int:
    return ingest.main(["--db", db_url, "--data-dir", str(data_dir), "--workers", "0",
                        "--no-progress", *source])


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A and D whole; B's image and C's report file are missing."""
    root = tmp_path / "corpus"
    for name in ("a", "c", "d"):
        make_png(root / f"{name}.png", seed=ord(name))
    write_manifest(root / "manifest.csv", [
        {"study_id": "A", "image": "a.png", "report": "FINDINGS: Clear lungs."},
        {"study_id": "B", "image": "b.png", "report": "FINDINGS: Small left effusion."},
        {"study_id": "C", "image": "c.png", "report": "reports/c.txt"},
        {"study_id": "D", "image": "d.png", "report": "FINDINGS: Normal heart."},
    ])
    return root


def _open_errors(db_url: str) -> list[str]:
    with Session(get_engine(db_url)) as s:
        return sorted(e.message for e in queries.list_ingest_errors(session=s))


def test_failed_items_give_exit_3_and_resolve_once_fixed(db_url, data_dir, corpus, caplog,
                                                         capsys):
    caplog.set_level(logging.WARNING, logger="pipeline.ingest")
    assert _run(db_url, data_dir, "folder", str(corpus)) == 3  # finished, some items failed
    out = capsys.readouterr().out
    assert "4 items: 2 ingested, 0 unchanged, 2 failed, 2 of them partly stored" in out
    assert _open_errors(db_url) == ["image file not found", "report file not found: reports/c.txt"]

    caplog.clear()  # a rerun warns again about what still fails, recording nothing new
    assert _run(db_url, data_dir, "folder", str(corpus)) == 3
    assert "0 ingested, 2 unchanged, 2 failed" in capsys.readouterr().out
    assert "image file not found" in caplog.text and "report file not found" in caplog.text
    assert len(_open_errors(db_url)) == 2

    make_png(corpus / "b.png", seed=2)
    (corpus / "reports").mkdir()
    (corpus / "reports/c.txt").write_text("FINDINGS: Mild cardiomegaly.")
    caplog.clear()
    assert _run(db_url, data_dir, "folder", str(corpus)) == 0
    out = capsys.readouterr().out
    assert "2 ingested, 2 unchanged, 0 failed" in out and "2 resolved" in out
    assert caplog.text == ""
    assert _open_errors(db_url) == []  # off the Data page's list ...
    with Session(get_engine(db_url)) as s:  # ... but kept, with when they were resolved
        kept = queries.list_ingest_errors(session=s, include_resolved=True)
        assert len(kept) == 2 and all(e.resolved_at for e in kept)
        assert queries.count_rows(session=s)["ingesterror"] == 0


def test_a_study_without_report_stays_out_of_the_review_queue(db_url, data_dir, corpus):
    from pipeline.extract import cli as extract

    _run(db_url, data_dir, "folder", str(corpus))
    assert extract.main(["--db", db_url]) == 0
    with Session(get_engine(db_url)) as s:
        rows = queries.list_review_queue(session=s, limit=50)
        studies = {r.study_id for r in rows}
        listed = {row.study.id: row for row in queries.list_studies(session=s)}
    no_report = [sid for sid, row in listed.items() if row.report is None]
    no_image = [sid for sid, row in listed.items() if row.image is None]
    assert len(no_report) == 1 and len(no_image) == 1
    assert no_report[0] not in studies  # C: nothing to review
    assert no_image[0] in studies  # B: its report can be reviewed, the image failed


@pytest.mark.parametrize("source", [("folder", "nowhere"), ("openi", "nowhere.tgz"),
                                    ("chexpert", "nowhere"),
                                    ("folder", ".", "--manifest", "nowhere.csv")])
def test_a_source_that_does_not_exist_is_not_found(tmp_path, monkeypatch, capsys, source):
    monkeypatch.chdir(tmp_path)
    db_path = tmp_path / "store.db"
    assert _run(f"sqlite:///{db_path}", tmp_path / "data", *source) == 1
    err = capsys.readouterr().err.strip()
    assert "not found: nowhere" in err and len(err.splitlines()) == 1
    assert not db_path.exists()  # nothing was made
