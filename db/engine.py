"""Engine, sessions and schema migrations.

SQLite is the embedded default (WAL, foreign keys on, busy timeout) so several reviewers and a
pipeline job can share one file; ``DATABASE_URL=postgresql+psycopg://...`` switches to PostgreSQL
with no code change. The schema is owned by Alembic (``db/migrations``); ``upgrade`` applies it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

DEFAULT_URL = "sqlite:///data/medfilip.db"
SQLITE_BUSY_TIMEOUT_MS = 30_000  # reviewers and a pipeline job may write at once


def database_url(url: str | None = None) -> str:
    """The URL to use: an explicit one, else ``DATABASE_URL``, else the embedded SQLite file."""
    return url or os.environ.get("DATABASE_URL") or DEFAULT_URL


def _set_sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed txn
    cur.close()


@lru_cache(maxsize=16)
def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
    url = database_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _set_sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


@contextmanager
def session_scope(url_or_engine: str | Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    engine = url_or_engine if isinstance(url_or_engine, Engine) else get_engine(url_or_engine)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("db") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` (idempotent)."""
    url = database_url(url)
    get_engine(url)  # creates the SQLite parent folder
    command.upgrade(alembic_config(url), revision)


def init_db(url: str | None = None) -> Engine:
    """Migrate to head and return the engine: the one call every entry point makes."""
    upgrade(url)
    return get_engine(database_url(url))
