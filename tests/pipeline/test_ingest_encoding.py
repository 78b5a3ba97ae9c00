"""A report file in Latin-1 / cp1252 (not UTF-8) is read with a fallback and a warning, not
rejected; the warning is made safe like any other message."""

from __future__ import annotations

import logging

from sqlmodel import Session, select

from db.engine import get_engine
from db.models import IngestError, Report
from pipeline.ingest import cli as ingest
from tests.factories import make_png, write_manifest

TEXT = "FINDINGS: Épanchement pleural gauche modéré, cœur normal – “stable”.\nIMPRESSION: Normal."


def test_cp1252_report_file_is_read_with_a_warning(db_url, data_dir, tmp_path, caplog, capsys):
    caplog.set_level(logging.WARNING, logger="pipeline.ingest")
    root = tmp_path / "corpus"
    make_png(root / "a.png")
    (root / "reports").mkdir()
    (root / "reports" / "Dupont_4417.txt").write_bytes(TEXT.encode("cp1252"))
    write_manifest(root / "manifest.csv", [
        {"study_id": "S1", "patient_id": "Dupont", "image": "a.png",
         "report": "reports/Dupont_4417.txt"}])
    assert ingest.main(["--db", db_url, "--data-dir", str(data_dir), "--workers", "0",
                        "--no-progress", "folder", str(root)]) == 0
    with Session(get_engine(db_url)) as s:
        (report,) = s.exec(select(Report)).all()
        assert s.exec(select(IngestError)).all() == []
    assert report.text == TEXT and report.findings.startswith("Épanchement")
    assert "manifest.csv line 2" in caplog.text and "not UTF-8" in caplog.text
    assert "cp1252" in caplog.text and "Dupont" not in caplog.text  # the file name is masked
