"""Alembic on the store's backend (SQLite, or PostgreSQL in the second pass): the history builds
the models' schema from an empty database one revision at a time, the head applies on top of the
revision before it, and a second `db upgrade` changes nothing."""

from __future__ import annotations

import logging

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlmodel import SQLModel

import db.models  # noqa: F401  (registers the tables)
from db.__main__ import main as db_main
from db.engine import alembic_config, get_engine, upgrade


def _revisions(url: str) -> list[str]:
    """Every revision id, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions()))]


def _current(url: str) -> str | None:
    with get_engine(url).connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def _schema(url: str) -> dict:
    """Tables with their columns, indexes, unique and foreign keys: what an upgrade could alter."""
    insp = inspect(get_engine(url))
    return {t: (sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)),
                sorted(str(sorted(i.items())) for i in insp.get_indexes(t)),
                sorted(str(sorted(u.items())) for u in insp.get_unique_constraints(t)),
                sorted(str(sorted(f.items())) for f in insp.get_foreign_keys(t)))
            for t in insp.get_table_names()}


def _diff(url: str) -> list:
    with get_engine(url).connect() as c:
        return compare_metadata(MigrationContext.configure(c), SQLModel.metadata)


def test_history_applies_one_revision_at_a_time_from_empty(empty_db_url):
    assert _current(empty_db_url) is None and _schema(empty_db_url) == {}
    for revision in _revisions(empty_db_url):
        upgrade(empty_db_url, revision)
        assert _current(empty_db_url) == revision
    assert _diff(empty_db_url) == [], "the migrations' schema differs from the models"


def test_head_applies_on_top_of_the_previous_revision(empty_db_url):
    *older, head = _revisions(empty_db_url)
    if older:
        upgrade(empty_db_url, older[-1])
        assert _current(empty_db_url) == older[-1]
    upgrade(empty_db_url, "head")
    assert _current(empty_db_url) == head
    assert _diff(empty_db_url) == []


def test_second_upgrade_is_a_noop(empty_db_url, caplog, capsys):
    caplog.set_level(logging.INFO, logger="alembic")
    assert db_main(["upgrade", "--db", empty_db_url]) == 0
    first = [r.getMessage() for r in caplog.records if "Running upgrade" in r.getMessage()]
    assert len(first) == len(_revisions(empty_db_url))  # the log line this test relies on is there
    schema, revision = _schema(empty_db_url), _current(empty_db_url)
    caplog.clear()
    assert db_main(["upgrade", "--db", empty_db_url]) == 0
    assert [r.getMessage() for r in caplog.records if "Running upgrade" in r.getMessage()] == []
    assert (_schema(empty_db_url), _current(empty_db_url)) == (schema, revision)
    assert "schema at head" in capsys.readouterr().out
