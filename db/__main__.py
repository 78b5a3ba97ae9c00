"""Schema management.

    python -m db upgrade                       # $DATABASE_URL (or .env), else data/medfilip.db
    python -m db upgrade --db postgresql+psycopg://user@localhost/medfilip
    python -m db current --db sqlite:///data/medfilip.db
"""

from __future__ import annotations

import argparse
import logging
import sys

from alembic import command

from db.engine import SchemaError, alembic_config, upgrade
from db.settings import store_url


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m db", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["upgrade", "current", "history"],
                   help="upgrade: apply migrations to head; current: show the applied revision; "
                        "history: list migrations")
    p.add_argument("--db", default=None, help="database URL (default: $DATABASE_URL, "
                   "else DATABASE_URL in ./.env, else sqlite:///data/medfilip.db)")
    p.add_argument("--revision", default="head", help="target revision for upgrade (default: head)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    url = store_url(args.db)
    if args.action == "upgrade":
        try:
            upgrade(url, args.revision)
        except SchemaError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"schema at {args.revision}")
    elif args.action == "current":
        command.current(alembic_config(url), verbose=False)
    else:
        command.history(alembic_config(url))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
