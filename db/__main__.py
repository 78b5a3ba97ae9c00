"""Schema management and accounts.

    python -m db upgrade                       # $DATABASE_URL (or .env), else data/medfilip.db
    python -m db upgrade --db postgresql+psycopg://user@localhost/medfilip
    python -m db current --db sqlite:///data/medfilip.db
    python -m db reviewers add "Dr Ada" --role admin          # prompts for the password
    echo "$PW" | python -m db reviewers add "Dr Bo" --role reviewer --password-stdin
    python -m db reviewers add demo-admin --role admin --generate-password --if-missing
    python -m db reviewers list
    python -m db reviewers set-role "Dr Bo" adjudicator
    python -m db reviewers disable "Dr Bo"
"""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sys

from alembic import command

from db.engine import SchemaError, alembic_config, init_db, session_scope, upgrade
from db.models import ReviewerRole
from db.settings import store_url

ROLES = [r.value for r in ReviewerRole]


def _add_db_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", default=None, help="database URL (default: $DATABASE_URL, "
                   "else DATABASE_URL in ./.env, else sqlite:///data/medfilip.db)")


def _reviewers_parser(sub) -> None:
    r = sub.add_parser("reviewers", help="manage sign-in accounts (audited)")
    rs = r.add_subparsers(dest="reviewers_action", required=True, metavar="ACTION",
                          help="add | list | set-role | disable | enable | set-password")
    add = rs.add_parser("add", help="create an account (the password is prompted)")
    add.add_argument("name", help="the account's display and sign-in name")
    add.add_argument("--role", choices=ROLES, default="reviewer", help="reviewer | adjudicator "
                     "| admin (default: reviewer)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of standard input")
    add.add_argument("--generate-password", action="store_true",
                     help="make a random password and print it once (demo accounts)")
    add.add_argument("--if-missing", action="store_true",
                     help="do nothing when an account of that name exists already")
    add.add_argument("--oidc-subject", default=None, help="sign in through the OIDC provider "
                     "as this subject (st.user 'sub' or email) instead of a password")
    rs.add_parser("list", help="list accounts with their role and state")
    sr = rs.add_parser("set-role", help="change an account's role")
    sr.add_argument("name", help="the account")
    sr.add_argument("role", choices=ROLES, help="the new role")
    for action, text in (("disable", "stop an account from signing in and writing"),
                         ("enable", "re-enable a disabled account")):
        d = rs.add_parser(action, help=text)
        d.add_argument("name", help="the account")
    sp = rs.add_parser("set-password", help="set an account's password (prompted)")
    sp.add_argument("name", help="the account")
    sp.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")
    for p in rs.choices.values():
        _add_db_flag(p)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m db", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION",
                           help="upgrade | current | history | reviewers")
    up = sub.add_parser("upgrade", help="apply migrations to head")
    up.add_argument("--revision", default="head", help="target revision for upgrade "
                    "(default: head)")
    sub.add_parser("current", help="show the applied revision")
    sub.add_parser("history", help="list migrations")
    for name in ("upgrade", "current", "history"):
        _add_db_flag(sub.choices[name])
    _reviewers_parser(sub)
    return p.parse_args(argv)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if password != getpass.getpass("Repeat password: "):
        raise ValueError("the two passwords differ")
    return password


def _reviewers(args: argparse.Namespace, url: str) -> int:
    from db import queries  # argon2 and the query layer only for account commands

    init_db(url)
    action, op = args.reviewers_action, queries.OPERATOR
    with session_scope(url) as session:
        if action == "list":
            for r in queries.list_accounts(session=session):
                sign_in = "password" if r.password_hash else (
                    f"oidc {r.oidc_subject}" if r.oidc_subject else "no sign-in")
                print(f"{r.id}\t{r.name}\t{ReviewerRole(r.role).value}\t"
                      f"{'disabled' if r.disabled else 'active'}\t{sign_in}")
            return 0
        if action == "add":
            if args.if_missing and queries.get_account(args.name, session=session):
                print(f"add: {args.name} exists already (its password was printed when it "
                      "was made; reset it with set-password)")
                return 0
            password = (None if args.oidc_subject else secrets.token_urlsafe(12)
                        if args.generate_password else _read_password(args.password_stdin))
            r = queries.create_account(args.name, ReviewerRole(args.role), password=password,
                                       oidc_subject=args.oidc_subject, actor=op, session=session)
        elif action == "set-role":
            r = queries.set_role(args.name, ReviewerRole(args.role), actor=op, session=session)
        elif action == "set-password":
            r = queries.set_password(args.name, _read_password(args.password_stdin), actor=op,
                                     session=session)
        else:
            r = queries.disable_account(args.name, disabled=action == "disable", actor=op,
                                        session=session)
        print(f"{action}: {r.name} ({ReviewerRole(r.role).value}"
              f"{', disabled' if r.disabled else ''})")
        if action == "add" and args.generate_password:
            print(f"password for {r.name} (shown once): {password}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    url = store_url(args.db)
    if args.action == "reviewers":
        try:
            return _reviewers(args, url)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
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
