"""Accounts and roles: argon2 hashes, sign-in, the `python -m db reviewers` commands, the role
checks the write functions make, and the audit of account changes."""

from __future__ import annotations

import io
import json

import pytest
from sqlmodel import Session, select

from db import queries
from db.__main__ import main as db_main
from db.engine import get_engine, session_scope
from db.models import KnowledgeEntry, KnowledgeStatus, Reviewer, ReviewerRole, ReviewEvent
from tests.factories import TEST_PASSWORD, make_account


def reviewer_events(url) -> list[ReviewEvent]:
    with Session(get_engine(url)) as s:
        return list(s.exec(select(ReviewEvent).where(ReviewEvent.entity == "reviewer")
                           .order_by(ReviewEvent.id)))


def test_password_is_stored_as_argon2_and_signs_in(db_url):
    with session_scope(db_url) as s:
        make_account(s, name="Dr A")
    with Session(get_engine(db_url)) as s:
        row = s.exec(select(Reviewer)).one()
        assert row.password_hash.startswith("$argon2id$")
        assert TEST_PASSWORD not in row.password_hash
        assert queries.authenticate("Dr A", TEST_PASSWORD, session=s).name == "Dr A"
        assert queries.authenticate("Dr A", "wrong password", session=s) is None
        assert queries.authenticate("Nobody", TEST_PASSWORD, session=s) is None


def test_short_password_and_duplicate_name_are_refused(db_url):
    with session_scope(db_url) as s:
        with pytest.raises(ValueError, match="at least 8"):
            queries.create_account("Dr A", ReviewerRole.reviewer, password="short",
                                   actor=queries.OPERATOR, session=s)
        make_account(s, name="Dr A")
        with pytest.raises(ValueError, match="already exists"):
            make_account(s, name="Dr  A ")


def test_only_admins_manage_accounts_and_changes_are_audited(db_url):
    with session_scope(db_url) as s:
        admin = make_account(s, name="Ada", role=ReviewerRole.admin)
        bo = make_account(s, name="Bo")
        with pytest.raises(queries.PermissionDenied, match="reviewer may not manage accounts"):
            queries.create_account("Cy", ReviewerRole.admin, password=TEST_PASSWORD, actor=bo,
                                   session=s)
        with pytest.raises(queries.PermissionDenied, match="Sign in first"):
            queries.set_role("Bo", ReviewerRole.admin, actor=None, session=s)
        queries.create_account("Cy", ReviewerRole.reviewer, password=TEST_PASSWORD, actor=admin,
                               session=s)
        queries.set_role("Bo", ReviewerRole.adjudicator, actor=admin, session=s)
    events = reviewer_events(db_url)
    assert [e.action for e in events] == ["create", "create", "create", "set-role"]
    assert [e.reviewer_id for e in events] == [None, None, admin.id, admin.id]
    before, after = json.loads(events[-1].before_json), json.loads(events[-1].after_json)
    assert (before["role"], after["role"]) == ("reviewer", "adjudicator")
    assert all("hash" not in e.after_json.replace("has_password", "") for e in events)


def test_a_disabled_account_cannot_sign_in_or_write(db_url):
    with session_scope(db_url) as s:
        bo = make_account(s, name="Bo")
        queries.disable_account("Bo", actor=queries.OPERATOR, session=s)
    with session_scope(db_url) as s:
        assert queries.authenticate("Bo", TEST_PASSWORD, session=s) is None
        with pytest.raises(queries.PermissionDenied, match="disabled"):
            queries.authorize(bo, queries.Permission.review, session=s)


def test_a_reviewer_cannot_approve_knowledge(db_url):
    with session_scope(db_url) as s:
        bo = make_account(s, name="Bo")
        judge = make_account(s, name="Jo", role=ReviewerRole.adjudicator)
        entry = KnowledgeEntry(category="edema", explanation="Draft.")
        s.add(entry)
        s.flush()
        with pytest.raises(queries.PermissionDenied, match="may not approve knowledge"):
            queries.update_knowledge(entry.id, version=1, explanation="Draft.",
                                     status=KnowledgeStatus.approved, reviewer=bo, session=s)
        assert queries.update_knowledge(entry.id, version=1, explanation="Edited draft.",
                                        status=KnowledgeStatus.draft, reviewer=bo, session=s).ok
        assert queries.update_knowledge(entry.id, version=2, explanation="Edited draft.",
                                        status=KnowledgeStatus.approved, reviewer=judge,
                                        session=s).ok


def test_role_is_read_from_the_store_at_each_write(db_url):
    """An Actor built at sign-in loses a right the moment an admin takes it away."""
    with session_scope(db_url) as s:
        jo = make_account(s, name="Jo", role=ReviewerRole.adjudicator)
        queries.authorize(jo, queries.Permission.adjudicate, session=s)
        queries.set_role("Jo", ReviewerRole.reviewer, actor=queries.OPERATOR, session=s)
        with pytest.raises(queries.PermissionDenied):
            queries.authorize(jo, queries.Permission.adjudicate, session=s)


def test_cli_add_list_set_role_disable(db_url, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(TEST_PASSWORD + "\n"))
    assert db_main(["reviewers", "add", "Dr Ada", "--role", "admin", "--password-stdin",
                    "--db", db_url]) == 0
    prompts = iter([TEST_PASSWORD, TEST_PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(prompts))
    assert db_main(["reviewers", "add", "Dr Bo", "--db", db_url]) == 0
    assert db_main(["reviewers", "set-role", "Dr Bo", "adjudicator", "--db", db_url]) == 0
    assert db_main(["reviewers", "disable", "Dr Bo", "--db", db_url]) == 0
    capsys.readouterr()
    assert db_main(["reviewers", "list", "--db", db_url]) == 0
    lines = [line.split("\t")[1:] for line in capsys.readouterr().out.splitlines()]
    assert lines == [["Dr Ada", "admin", "active", "password"],
                     ["Dr Bo", "adjudicator", "disabled", "password"]]
    assert db_main(["reviewers", "set-role", "Nobody", "admin", "--db", db_url]) == 2
    assert "no account named 'Nobody'" in capsys.readouterr().err
    with session_scope(db_url) as s:
        assert queries.authenticate("Dr Ada", TEST_PASSWORD, session=s).role == "admin"
    assert [e.action for e in reviewer_events(db_url)] == ["create", "create", "set-role",
                                                           "disable"]


def test_cli_demo_admin_password_printed_once(db_url, capsys):
    args = ["reviewers", "add", "demo-admin", "--role", "admin", "--generate-password",
            "--if-missing", "--db", db_url]
    assert db_main(args) == 0
    out = capsys.readouterr().out
    password = out.split("(shown once): ")[1].strip()
    assert db_main(args) == 0
    assert "exists already" in capsys.readouterr().out
    with session_scope(db_url) as s:
        assert queries.authenticate("demo-admin", password, session=s).role == "admin"
