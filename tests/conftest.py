"""Shared fixtures: a temporary migrated store per test (a SQLite file, or a database on the
PostgreSQL server of ``MEDFILIP_TEST_POSTGRES_URL``), and a data dir beside it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from db.engine import get_engine, init_db

# Set to a PostgreSQL server URL (e.g. postgresql+psycopg://user:pw@127.0.0.1/postgres) to run
# the store-backed tests against a fresh PostgreSQL database each instead of a SQLite file.
POSTGRES_URL = os.environ.get("MEDFILIP_TEST_POSTGRES_URL")


def pytest_addoption(parser):
    parser.addoption("--store-only", action="store_true",
                     help="run only the store-backed tests (those using a db_url fixture): "
                          "the PostgreSQL pass of `make test`")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--store-only"):
        return
    kept = [i for i in items if {"db_url", "empty_db_url"} & set(getattr(i, "fixturenames", ()))]
    config.hook.pytest_deselected(items=[i for i in items if i not in kept])
    items[:] = kept


@contextmanager
def _postgres_database(template: str = "template1") -> Iterator[str]:
    """URL of a new database on the ``MEDFILIP_TEST_POSTGRES_URL`` server, a copy of
    ``template``; dropped afterwards, whoever is still connected."""
    name = f"medfilip_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def _migrated_template() -> Iterator[str]:
    """PostgreSQL: one database migrated to head, that each test's store is copied from (a copy
    takes ~20 ms, a migration ~200 ms; tests/db/test_migrations.py runs the migrations)."""
    with _postgres_database() as url:
        init_db(url)
        get_engine(url).dispose()  # CREATE DATABASE ... TEMPLATE needs it unused
        yield make_url(url).database


@pytest.fixture
def empty_db_url(tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, empty database (no schema): a SQLite file, or a PostgreSQL database."""
    if not POSTGRES_URL:
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with _postgres_database() as url:
        yield url


@pytest.fixture
def db_url(request, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh store migrated to head: a real SQLite file (WAL and all), or PostgreSQL."""
    if not POSTGRES_URL:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        init_db(url)
        yield url
        return
    with _postgres_database(request.getfixturevalue("_migrated_template")) as url:
        yield url


@pytest.fixture
def sqlite_only(db_url: str) -> None:
    """For tests of SQLite specifics (pragmas, the database file's bytes)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite-specific")


@pytest.fixture
def engine(db_url: str):
    return get_engine(db_url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d
