"""Schema creation is all-or-nothing: a SIGKILL in the middle leaves a store a rerun migrates,
and a store wedged by an interrupted creation of older code (tables, no version) is recovered
or refused in one line."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory

from db.__main__ import main as db_main
from db.engine import alembic_config, get_engine
from pipeline.ingest import cli as ingest
from tests.factories import make_png, write_manifest

REPO = Path(__file__).resolve().parents[2]
# Runs an entry point in a child that SIGKILLs itself when the migration reaches
# CREATE TABLE report: half the tables of revision 0001 are made by then.
KILL_MID_CREATION = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "before_cursor_execute")
def _kill(conn, cursor, statement, *args):
    if statement.lstrip().upper().startswith("CREATE TABLE REPORT"):
        os.kill(os.getpid(), signal.SIGKILL)

from db.__main__ import main
main(["upgrade", "--db", sys.argv[1]])
"""


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _version(path: Path) -> list[str]:
    with sqlite3.connect(path) as con:
        return [r[0] for r in con.execute("SELECT version_num FROM alembic_version")]


def _head(url: str) -> str:
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_sigkill_during_schema_creation_leaves_nothing_and_a_rerun_recovers(tmp_path, capsys):
    db_path = tmp_path / "store.db"
    url = f"sqlite:///{db_path}"
    proc = subprocess.run([sys.executable, "-c", KILL_MID_CREATION, url], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120,
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _tables(db_path) <= {"alembic_version"}  # all or nothing: nothing
    with sqlite3.connect(db_path) as con:  # WAL from the file's first write, not the app's
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    corpus = tmp_path / "corpus"
    make_png(corpus / "a.png")
    write_manifest(corpus / "manifest.csv",
                   [{"study_id": "S1", "image": "a.png", "report": "FINDINGS: Clear."}])
    assert ingest.main(["--db", url, "--data-dir", str(tmp_path / "data"), "--workers", "0",
                        "--no-progress", "folder", str(corpus)]) == 0
    assert _version(db_path) == [_head(url)]
    capsys.readouterr()
    assert db_main(["current", "--db", url]) == 0
    assert _head(url) in capsys.readouterr().out


def test_db_upgrade_makes_a_wal_file(tmp_path):
    db_path = tmp_path / "new.db"
    assert db_main(["upgrade", "--db", f"sqlite:///{db_path}"]) == 0
    get_engine(f"sqlite:///{db_path}").dispose()
    with sqlite3.connect(db_path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _wedged(tmp_path: Path, drop: tuple[str, ...] = (), rows: bool = False) -> tuple[str, Path]:
    """What older code left after a kill: revision 0001's tables (some dropped), no version."""
    db_path = tmp_path / "wedged.db"
    url = f"sqlite:///{db_path}"
    command.upgrade(alembic_config(url), "0001")
    with sqlite3.connect(db_path) as con:
        con.execute("DELETE FROM alembic_version")
        for table in drop:
            con.execute(f"DROP TABLE {table}")
        if rows:
            con.execute("INSERT INTO study (study_key, patient_key, dataset, created_at) "
                        "VALUES ('k', 'p', 'd', '2020-01-01')")
    return url, db_path


def test_wedged_store_with_every_initial_table_is_stamped_and_upgraded(tmp_path):
    url, db_path = _wedged(tmp_path, rows=True)
    assert db_main(["upgrade", "--db", url]) == 0
    assert _version(db_path) == [_head(url)]
    with sqlite3.connect(db_path) as con:
        assert con.execute("SELECT count(*) FROM study").fetchone()[0] == 1  # data kept


def test_wedged_store_with_some_empty_tables_is_rebuilt(tmp_path):
    url, db_path = _wedged(tmp_path, drop=("finding", "reportextraction"))
    assert db_main(["upgrade", "--db", url]) == 0
    assert _version(db_path) == [_head(url)]
    assert {"finding", "reportextraction", "study"} <= _tables(db_path)


def test_wedged_store_with_data_and_missing_tables_is_refused_in_one_line(tmp_path, capsys):
    url, db_path = _wedged(tmp_path, drop=("finding",), rows=True)
    before = _tables(db_path)
    assert db_main(["upgrade", "--db", url]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no schema version" in err and "finding" in err
    assert _tables(db_path) == before and _version(db_path) == []  # nothing changed
    assert ingest.main(["--db", url, "--no-progress", "folder", str(tmp_path)]) == 1
    assert "no schema version" in capsys.readouterr().err
