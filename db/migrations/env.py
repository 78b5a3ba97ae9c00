"""Alembic environment: runs migrations against the URL set by ``db.engine.alembic_config``.

Every run of migrations is one transaction, the ``alembic_version`` row included, so a kill
mid-way leaves the store as it was. That holds on PostgreSQL natively; on SQLite the pysqlite
driver would commit before each DDL statement, so the migration engine turns its implicit
transactions off and issues ``BEGIN IMMEDIATE`` itself (SQLAlchemy's documented pysqlite
recipe). IMMEDIATE also takes the write lock up front: a second process migrating the same
store waits for the first to commit, then finds nothing to do. On PostgreSQL a transaction-level
advisory lock does the same.
"""

from alembic import context
from sqlalchemy import event, pool
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel, create_engine

import db.models  # noqa: F401  (registers the tables on SQLModel.metadata)
from db.engine import SQLITE_BUSY_TIMEOUT_MS
from db.migrations.recover import recover_unversioned

config = context.config
target_metadata = SQLModel.metadata
MIGRATION_LOCK_ID = 0x6D656466_696C6970 >> 1  # "medfilip": a fixed pg advisory lock key (int64)


def migration_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() != "sqlite":
        engine = create_engine(url, poolclass=pool.NullPool)

        @event.listens_for(engine, "begin")
        def _lock(conn) -> None:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")

        return engine
    engine = create_engine(url, poolclass=pool.NullPool)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # no implicit BEGIN/COMMIT: we issue our own
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")  # persistent: the file is WAL from its birth
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = migration_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        # batch mode lets ALTER TABLE migrations run on SQLite too
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True, transactional_ddl=True,
                          transaction_per_migration=False)
        with context.begin_transaction():
            if config.attributes.get("recover"):  # set by db.engine.upgrade
                recover_unversioned(connection, context.get_context(), context.script)
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
