"""AppTest of sign-in (local accounts, the session token), role-dependent navigation, and the
Adjudication and Accounts & assignments pages with their permission cases."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from curation_app import auth, state
from db import queries
from db.engine import get_engine, session_scope
from db.models import Assignment, Reviewer, ReviewerRole, ReviewEvent, Settlement
from tests.factories import PAGES, TEST_PASSWORD, assign, make_account, make_reviewable_report

APP = PAGES.parents[1] / "streamlit_app.py"


@pytest.fixture
def env(app_store, data_dir):
    with session_scope(app_store) as s:
        report, findings = make_reviewable_report(s, data_dir=data_dir)
        a, b = make_account(s, name="Dr A"), make_account(s, name="Dr B")
        j = make_account(s, name="Dr J", role=ReviewerRole.adjudicator)
        admin = make_account(s, name="Ada", role=ReviewerRole.admin)
        assign(s, report.id, a, b)
    with session_scope(app_store) as s:  # A accepts all, B rejects one: a dispute
        for actor in (a, b):
            for f in findings:
                action = "reject" if actor is b and f is findings[2] else "accept"
                assert queries.answer_finding(f.id, action, seen_version=0, actor=actor,
                                              session=s).ok
    return SimpleNamespace(url=app_store, report=report, findings=findings, a=a, b=b, j=j,
                           admin=admin)


def app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30).run()
    assert not at.exception, at.exception
    return at


def page(name: str, actor=None, **query_params) -> AppTest:
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=30)
    if actor is not None:
        at.session_state[state.KEY_REVIEWER] = actor.id
    for key, value in query_params.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def settlement(url) -> Settlement:
    with Session(get_engine(url)) as s:
        return s.exec(select(Settlement)).one()


def sign_in(at: AppTest, name: str, password: str = TEST_PASSWORD) -> AppTest:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button(key="login").click().run()
    assert not at.exception, at.exception
    return at


def test_sign_in_with_a_local_account_and_sign_out(env):
    at = app()
    assert at.title[0].value == "Sign in"
    sign_in(at, "Dr A", "wrong password")
    assert "wrong password" in at.error[0].value
    assert state.KEY_REVIEWER not in at.session_state
    sign_in(at, "Dr A")
    assert at.title[0].value == "Review"  # the app opens on the review page
    assert "Signed in as **Dr A** · reviewer" in " ".join(m.value for m in at.sidebar.markdown)
    at.sidebar.button(key="sign_out").click().run()
    assert at.title[0].value == "Sign in"


def test_a_reviewer_is_refused_the_adjudicator_and_admin_pages(env):
    assert sign_in(app(), "Dr A").session_state[state.KEY_REVIEWER] == env.a.id
    assert "may not adjudicate" in page("adjudicate", env.a).info[0].value
    assert "may not manage accounts" in page("admin", env.a).info[0].value


def test_session_token_round_trip_expiry_and_tampering(env, monkeypatch):
    monkeypatch.setenv("MEDFILIP_SESSION_SECRET", "test-secret")
    with Session(get_engine(env.url)) as s:
        a = s.get(Reviewer, env.a.id)
        token = auth.make_token(a)
        assert auth.read_token(token, s).id == env.a.id
        assert auth.read_token(token[:-1] + ("0" if token[-1] != "0" else "1"), s) is None
        assert auth.read_token(auth.make_token(a, now=time.time() - 13 * 3600), s) is None
        assert auth.read_token("garbage", s) is None
    with session_scope(env.url) as s:  # a new password ends the old sessions
        queries.set_password("Dr A", "another password", actor=queries.OPERATOR, session=s)
    with Session(get_engine(env.url)) as s:
        assert auth.read_token(token, s) is None


def test_adjudicator_sees_both_answers_and_picks_one(env):
    at = page("adjudicate", env.j)
    assert "Disputed reports 1–1 of 1" in " ".join(c.value for c in at.caption)
    at.button(key=f"adj_open_{env.report.id}").click().run()
    assert at.subheader[0].value == f"Report {env.report.id}"
    a_table, b_table, _editor = (df.value for df in at.dataframe)
    assert list(a_table.status) == ["accepted"] * 3
    assert sorted(b_table.status) == ["accepted", "accepted", "rejected"]
    assert len(at.get("plotly_chart")) == 1
    at.button(key=f"adj_pick_{env.b.id}").click().run()
    s = settlement(env.url)
    assert (s.how, s.answer_reviewer_id, s.adjudicator_id) == ("adjudicated", env.b.id, env.j.id)
    assert "No disputed report" in at.info[0].value
    with Session(get_engine(env.url)) as ses:
        assert ses.exec(select(ReviewEvent).where(ReviewEvent.action == "adjudicate-pick")).one()


def test_adjudicator_writes_a_third_answer_in_the_table(env):
    at = page("adjudicate", env.j, report=str(env.report.id))
    at.button(key="adj_own").click().run()  # the seeded table: A's answer as the third
    s = settlement(env.url)
    assert (s.how, s.answer_reviewer_id) == ("adjudicated", env.j.id)


def test_a_reviewer_cannot_open_the_adjudication_page(env):
    at = page("adjudicate", env.a, report=str(env.report.id))
    assert not at.button and "may not adjudicate" in at.info[0].value
    assert page("adjudicate", None).warning


def test_admin_creates_an_account_changes_a_role_and_assigns(env):
    at = page("admin", env.admin)
    at.text_input(key="acct_name").input("Dr New")
    at.text_input(key="acct_password").input("short")
    at.button(key="acct_create_btn").click().run()
    assert "at least 8" in at.error[0].value
    at.text_input(key="acct_password").input(TEST_PASSWORD)
    at.button(key="acct_create_btn").click().run()
    assert "Account Dr New created" in at.success[0].value
    at.selectbox(key="acct_pick").select("Dr New")
    at.selectbox(key="acct_new_role").select("adjudicator")
    at.button(key="acct_set_role").click().run()
    with Session(get_engine(env.url)) as s:
        new = s.exec(select(Reviewer).where(Reviewer.name == "Dr New")).one()
        assert new.role == "adjudicator"
    with session_scope(env.url) as s:
        make_reviewable_report(s, key="more")
    at.multiselect(key="assign_reviewers").select("Dr A").select("Dr New")
    at.button(key="assign_btn").click().run()
    # 20% of 2 reports rounds to 0 doubles and one exists: the new report gets one reviewer
    assert "new_single=1 new_double=0" in at.success[0].value
    with Session(get_engine(env.url)) as s:
        assert len(s.exec(select(Assignment)).all()) == 3


def test_with_an_oidc_provider_sign_in_is_st_login(env):
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.secrets["auth"] = {"redirect_uri": "http://localhost:8501/oauth2callback",
                          "cookie_secret": "x" * 32, "client_id": "id", "client_secret": "s",
                          "server_metadata_url": "https://idp.example/.well-known/openid"}
    at.run()
    assert not at.exception, at.exception
    assert at.button(key="oidc_login").label == "Sign in with your organisation"
    assert not [t for t in at.text_input if t.key == "login_password"]
