"""python -m pipeline.assign: balanced, a double-review share, idempotent, never reassigns."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session, select

from db import queries
from db.engine import get_engine, session_scope
from db.models import Assignment, Report, ReviewerRole, ReviewEvent
from pipeline.assign.cli import main
from pipeline.assign.plan import plan
from tests.factories import make_account, make_study


def _store(db_url, n=50):
    with session_scope(db_url) as s:
        for i in range(n):
            make_study(s, key=f"s{i}", split="test" if i % 5 == 0 else "train")
        for name in ("a", "b", "c"):
            make_account(s, name=name)


def _assignments(db_url) -> list[tuple[int, int, object]]:
    with Session(get_engine(db_url)) as s:
        return [(a.report_id, a.reviewer_id, a.completed_at)
                for a in s.exec(select(Assignment).order_by(Assignment.id))]


def test_balanced_with_a_double_share(db_url, capsys):
    _store(db_url)
    assert main(["--db", db_url, "--reviewers", "a,b,c", "--double-share", "0.2"]) == 0
    assert "reports=50 new_single=40 new_double=10" in capsys.readouterr().out
    rows = _assignments(db_url)
    per_report = Counter(r for r, _, _ in rows)
    assert len(per_report) == 50 and Counter(per_report.values()) == {1: 40, 2: 10}
    loads = Counter(rev for _, rev, _ in rows)
    assert max(loads.values()) - min(loads.values()) <= 1 and sum(loads.values()) == 60
    # two distinct reviewers on each double report
    assert all(len({rev for r, rev, _ in rows if r == rep}) == n for rep, n in per_report.items())


def test_idempotent_and_done_work_is_never_reassigned(db_url, capsys):
    _store(db_url)
    assert main(["--db", db_url, "--reviewers", "a,b", "--split", "test"]) == 0
    first = _assignments(db_url)
    assert len(first) == 10
    with session_scope(db_url) as s:  # one assignment done
        done = s.exec(select(Assignment)).first()
        done.completed_at = done.created_at
        s.add(done)
    assert main(["--db", db_url, "--reviewers", "a,b", "--split", "test"]) == 0
    assert "new_single=0 new_double=0 already_assigned=10" in capsys.readouterr().out
    assert [(r, v) for r, v, _ in _assignments(db_url)] == [(r, v) for r, v, _ in first]
    # a wider run adds the rest, shared so that loads even out with c
    assert main(["--db", db_url, "--reviewers", "a,b,c"]) == 0
    loads = Counter(v for _, v, _ in _assignments(db_url))
    assert sum(loads.values()) == 50 and max(loads.values()) - min(loads.values()) <= 1
    with Session(get_engine(db_url)) as s:
        runs = s.exec(select(ReviewEvent).where(ReviewEvent.entity == "assignment",
                                                ReviewEvent.action == "assign")).all()
    assert len(runs) == 3


def test_unknown_reviewer_and_bad_share_are_errors(db_url, capsys):
    _store(db_url, n=3)
    assert main(["--db", db_url, "--reviewers", "a,zed"]) == 2
    assert "no active account named 'zed'" in capsys.readouterr().out
    assert main(["--db", db_url, "--reviewers", "a", "--double-share", "0.5"]) == 2
    assert "at least two reviewers" in capsys.readouterr().out
    assert _assignments(db_url) == []


def test_only_admins_assign(db_url):
    _store(db_url, n=2)
    with session_scope(db_url) as s:
        bo = make_account(s, name="bo")
        admin = make_account(s, name="ada", role=ReviewerRole.admin)
        [rid, *_] = s.exec(select(Report.id)).all()
        try:
            queries.add_assignments([(rid, bo.id)], actor=bo, session=s, summary={})
        except queries.PermissionDenied as err:
            assert "may not assign" in str(err)
        else:
            raise AssertionError("a reviewer assigned work")
        assert queries.add_assignments([(rid, bo.id)], actor=admin, session=s, summary={}) == 1


def test_plan_double_share_counts_existing_doubles():
    assigned = {1: [7, 8], 2: [], 3: [], 4: []}
    pairs = plan(assigned, [7, 8], 0.5, {7: 1, 8: 1})
    # round(0.5 * 4) = 2 doubles wanted, 1 exists: one of the three new reports gets two
    assert sorted(Counter(r for r, _ in pairs).values()) == [1, 1, 2]
