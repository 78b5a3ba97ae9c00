"""Engine, sessions and schema migrations.

SQLite is the embedded default (WAL, foreign keys on, busy timeout) so several reviewers and a
pipeline job can share one file; a ``postgresql+psycopg://...`` URL switches to PostgreSQL with no
code change. Every function here takes the URL from its caller: the environment is read by
``db.settings`` alone. The schema is owned by Alembic (``db/migrations``); ``upgrade`` applies it.
"""

from __future__ import annotations

import sys
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

SQLITE_BUSY_TIMEOUT_MS = 30_000  # reviewers and a pipeline job may write at once


class SchemaError(RuntimeError):
    """The store's schema cannot be brought to head; the message is one line, fit for a CLI."""


def _set_sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash loses no committed txn
    cur.close()


@lru_cache(maxsize=16)
def get_engine(url: str) -> Engine:
    """One engine per URL per process (engines own connection pools)."""
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
def session_scope(url_or_engine: str | Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    engine = url_or_engine if isinstance(url_or_engine, Engine) else get_engine(url_or_engine)
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(url: str) -> Config:
    cfg = Config(stdout=sys.stdout)  # Config's default is the sys.stdout of import time
    cfg.set_main_option("script_location", str(resources.files("db") / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema at ``url`` up to ``revision`` (idempotent), in one transaction that
    waits for any other process migrating the same store (``db/migrations/env.py``). A store
    left half-made by older code is recovered or refused (``db.migrations.recover``):
    ``SchemaError``."""
    get_engine(url)  # creates the SQLite parent folder
    cfg = alembic_config(url)
    cfg.attributes["recover"] = True
    command.upgrade(cfg, revision)


def init_db(url: str) -> Engine:
    """Migrate to head and return the engine: the one call every entry point makes."""
    upgrade(url)
    return get_engine(url)
