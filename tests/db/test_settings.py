"""One reader of the environment: a ``.env`` file in the working directory names the store for
``python -m db`` and the stages alike (db.settings.StoreSettings, extended by pipeline.settings)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from db.__main__ import main as db_main
from pipeline.ingest import cli as ingest
from pipeline.knowledge import cli as knowledge
from tests.factories import make_png, write_manifest


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as con:
        return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as con:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_dotenv_database_url_is_honoured_by_db_cli_and_stages(tmp_path, monkeypatch, capsys):
    work, store = tmp_path / "work", tmp_path / "elsewhere" / "dotenv.db"
    work.mkdir()
    (work / ".env").write_text(f"DATABASE_URL=sqlite:///{store}\n")
    make_png(work / "corpus/a.png")
    write_manifest(work / "corpus/manifest.csv",
                   [{"study_id": "S1", "image": "a.png", "report": "FINDINGS: Clear."}])
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.chdir(work)

    assert db_main(["upgrade"]) == 0
    assert "alembic_version" in _tables(store)
    assert db_main(["current"]) == 0
    assert ingest.main(["--data-dir", str(work / "data"), "--workers", "0", "--no-progress",
                        "folder", str(work / "corpus")]) == 0
    assert knowledge.main(["sync"]) == 0
    assert _count(store, "study") == 1 and _count(store, "knowledgeentry") > 0
    assert not (work / "data" / "medfilip.db").exists()  # the default file was never made
