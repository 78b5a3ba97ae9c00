"""Kill -9 an ingest mid-way, rerun it: no duplicates, nothing lost, a sound database file."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage

from pipeline.ingest import cli as ingest
from tests.factories import make_png, write_manifest

REPO = Path(__file__).resolve().parents[2]
N_STUDIES = 300


def _count(db_path: Path, table: str) -> int:
    try:
        with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet, or mid-migration
        return 0


@pytest.mark.slow
def test_killed_ingest_resumes_without_duplicates(tmp_path):
    root = tmp_path / "corpus"
    rows = []
    for i in range(N_STUDIES):
        make_png(root / f"img/{i}.png", size=(48, 48), seed=i)
        rows.append({"study_id": f"S{i}", "image": f"img/{i}.png", "patient_id": f"P{i % 7}",
                     "report": f"FINDINGS: Study {i}.\nIMPRESSION: Normal."})
    write_manifest(root / "manifest.csv", rows)
    db_path, data_dir = tmp_path / "store.db", tmp_path / "data"
    argv = ["--db", f"sqlite:///{db_path}", "--data-dir", str(data_dir), "--no-progress",
            "--batch-size", "3", "folder", str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.ingest", "--workers", "1", *argv],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count(db_path, "study") < 30 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = _count(db_path, "study")
    assert 0 < at_kill < N_STUDIES, f"kill landed outside the run ({at_kill} studies)"

    assert ingest.main(["--workers", "0", *argv]) == 0

    with sqlite3.connect(db_path) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for table in ("study", "image", "report"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == N_STUDIES
        dup_reports = con.execute("SELECT study_id FROM report GROUP BY study_id "
                                  "HAVING count(*) > 1").fetchall()
        assert dup_reports == []
        paths = [r[0] for r in con.execute("SELECT thumb_path FROM image")]
    for rel in paths:  # every referenced file is whole (a partial one was rewritten)
        with PILImage.open(data_dir / rel) as im:
            im.load()
