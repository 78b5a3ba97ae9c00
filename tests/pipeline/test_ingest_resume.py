"""Kill -9 an ingest mid-way, rerun it: no duplicates, nothing lost, a sound store (a SQLite file,
or PostgreSQL in the second pass)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import create_engine, pool, text
from sqlalchemy.exc import DBAPIError

from pipeline.ingest import cli as ingest
from tests.factories import make_png, write_manifest

REPO = Path(__file__).resolve().parents[2]
N_STUDIES = 300


def _count(db_url: str, table: str) -> int:
    # A fresh connection per poll (NullPool): the test holds nothing open on the ingest's store.
    engine = create_engine(db_url, poolclass=pool.NullPool)
    try:
        with engine.connect() as c:
            return c.execute(text(f"SELECT count(*) FROM {table}")).scalar()
    except DBAPIError:  # locked for a moment (SQLite)
        return 0
    finally:
        engine.dispose()


@pytest.mark.slow
def test_killed_ingest_resumes_without_duplicates(db_url, tmp_path):
    root = tmp_path / "corpus"
    rows = []
    for i in range(N_STUDIES):
        make_png(root / f"img/{i}.png", size=(48, 48), seed=i)
        rows.append({"study_id": f"S{i}", "image": f"img/{i}.png", "patient_id": f"P{i % 7}",
                     "report": f"FINDINGS: Study {i}.\nIMPRESSION: Normal."})
    write_manifest(root / "manifest.csv", rows)
    data_dir = tmp_path / "data"
    argv = ["--db", db_url, "--data-dir", str(data_dir), "--no-progress",
            "--batch-size", "3", "folder", str(root)]
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.ingest", "--workers", "1", *argv],
                            cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _count(db_url, "study") < 30 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    at_kill = _count(db_url, "study")
    assert 0 < at_kill < N_STUDIES, f"kill landed outside the run ({at_kill} studies)"

    assert ingest.main(["--workers", "0", *argv]) == 0

    engine = create_engine(db_url, poolclass=pool.NullPool)
    with engine.connect() as c:
        if db_url.startswith("sqlite"):
            assert c.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        for table in ("study", "image", "report"):
            assert c.execute(text(f"SELECT count(*) FROM {table}")).scalar() == N_STUDIES
        dup_reports = c.execute(text("SELECT study_id FROM report GROUP BY study_id "
                                     "HAVING count(*) > 1")).all()
        assert dup_reports == []
        paths = list(c.execute(text("SELECT thumb_path FROM image")).scalars())
    engine.dispose()
    for rel in paths:  # every referenced file is whole (a partial one was rewritten)
        with PILImage.open(data_dir / rel) as im:
            im.load()
