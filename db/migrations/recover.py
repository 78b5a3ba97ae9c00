"""A store that older code left half-made: tables present, ``alembic_version`` empty.

Before migrations ran as one transaction, a kill during schema creation left some or all of
revision 0001's tables and no version row, and every later upgrade failed on "table already
exists". ``recover_unversioned`` runs inside the migration's own transaction, under its lock:

- every table of the base revision present, with its columns, and none else: the creation ran
  to its end but the version row was lost, so the store is stamped at the base revision (its
  rows are kept) and the upgrade goes on from there;
- some of them present, all empty: nothing worth keeping, so they are dropped and the schema is
  created afresh;
- otherwise (rows in a store whose tables do not match): ``SchemaError`` in one line, nothing
  changed.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, func, inspect, select, table
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from db.engine import SchemaError

log = logging.getLogger("db.migrations")


@lru_cache(maxsize=4)
def _base_schema(script_dir: str) -> tuple[str, dict[str, frozenset[str]]]:
    """(revision, table -> column names) that the base revision creates, read back from a
    scratch in-memory SQLite database it is run on."""
    script = ScriptDirectory(script_dir)
    base = script.get_revision(script.get_base())
    scratch = create_engine("sqlite://")
    with scratch.begin() as conn:
        with Operations.context(MigrationContext.configure(conn, opts={"render_as_batch": True})):
            base.module.upgrade()
        insp = inspect(conn)
        tables = {t: frozenset(c["name"] for c in insp.get_columns(t))
                  for t in insp.get_table_names()}
    scratch.dispose()
    return base.revision, tables


def recover_unversioned(connection: Connection, migration: MigrationContext,
                        script: ScriptDirectory) -> None:
    if migration.get_current_heads():
        return
    insp = inspect(connection)
    names = set(insp.get_table_names()) - {migration.version_table}
    if not names:
        return  # a new store (an empty alembic_version alone is fine)
    revision, base = _base_schema(script.dir)
    present = names & (set(base) | set(SQLModel.metadata.tables))
    if not present:
        return  # another application's tables only: the migration creates ours beside them
    if present == set(base) and all(base[t] <= {c["name"] for c in insp.get_columns(t)}
                                    for t in base):
        log.warning("store had revision %s's tables but no schema version (an interrupted "
                    "creation): stamped %s, rows kept", revision, revision)
        migration.stamp(script, revision)
        return
    filled = sorted(t for t in present
                    if connection.execute(select(func.count()).select_from(table(t))).scalar())
    if not filled:
        log.warning("store had %d empty tables but no schema version (an interrupted creation): "
                    "dropped them, creating the schema afresh", len(present))
        meta = MetaData()
        meta.reflect(connection, only=sorted(present))
        meta.drop_all(connection)
        return
    missing = sorted(set(base) - present)
    raise SchemaError(
        f"the store has no schema version but holds rows ({', '.join(filled)}) in tables that "
        f"do not match revision {revision} (missing: {', '.join(missing) or 'none'}; extra: "
        f"{', '.join(sorted(present - set(base))) or 'none'}); nothing was changed: restore it "
        "from a backup or move it aside")
