"""Two ingests at once into one new store: both finish cleanly, nothing is stored twice."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from tests.factories import make_png, write_manifest

REPO = Path(__file__).resolve().parents[2]
N_STUDIES = 24


def test_two_concurrent_ingests_into_one_new_store(tmp_path):
    root = tmp_path / "corpus"
    rows = []
    for i in range(N_STUDIES):
        make_png(root / f"img/{i}.png", size=(16, 16), seed=i)
        rows.append({"study_id": f"S{i}", "image": f"img/{i}.png", "patient_id": f"P{i % 5}",
                     "report": f"FINDINGS: Study {i}.\nIMPRESSION: Normal."})
    write_manifest(root / "manifest.csv", rows)
    db_path = tmp_path / "store.db"
    argv = [sys.executable, "-m", "pipeline.ingest", "--db", f"sqlite:///{db_path}",
            "--data-dir", str(tmp_path / "data"), "--no-progress", "--workers", "0",
            "--batch-size", "2", "folder", str(root)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    for rc, out, err in results:
        assert rc == 0 and "Traceback" not in err, err
        assert f"{N_STUDIES} items:" in out and "0 failed" in out, out
    with sqlite3.connect(db_path) as con:
        for table in ("study", "image", "report"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == N_STUDIES, table
        assert con.execute("SELECT count(*) FROM ingesterror").fetchone()[0] == 0
