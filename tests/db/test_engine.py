"""Engine settings and migrations: the SQLite file is configured as promised, and the Alembic
history creates exactly the schema the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlmodel import SQLModel

import db.models  # noqa: F401
from db.__main__ import main as db_main
from db.engine import alembic_config, get_engine


def test_sqlite_pragmas(engine, sqlite_only):
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert c.execute(text("PRAGMA busy_timeout")).scalar() >= 5000


def test_migrations_match_models(engine):
    with engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree; add an Alembic revision: {diff}"


def test_cli_upgrade_creates_schema_and_is_idempotent(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'sub' / 'cli.db'}"
    assert db_main(["upgrade", "--db", url]) == 0
    assert db_main(["upgrade", "--db", url]) == 0
    with get_engine(url).connect() as c:
        tables = {r[0] for r in c.execute(text("SELECT name FROM sqlite_master WHERE type='table'"))}
        version = c.execute(text("SELECT version_num FROM alembic_version")).scalar()
    assert {"study", "image", "report", "finding", "knowledgeentry", "reviewevent", "reviewer",
            "trainingrun", "embeddingindex", "ingesterror", "assignment"} <= tables
    assert version == ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def test_foreign_keys_enforced(engine):
    from sqlalchemy.exc import IntegrityError

    with engine.begin() as c:
        try:
            c.execute(text("INSERT INTO report (study_id, text, text_sha256) VALUES (999, 'x', 'h')"))
        except IntegrityError:
            return
    raise AssertionError("a report pointing at a missing study was accepted")
