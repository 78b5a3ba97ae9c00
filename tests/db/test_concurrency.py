"""Concurrency: 8 processes make conflicting answers on the same findings at once (the same
reviewer in several windows, and a second reviewer). No update is lost, every saved change is
in the audit, and every refused save comes back as a conflict."""

from __future__ import annotations

import json
import multiprocessing as mp
from collections import Counter

from sqlmodel import Session, select

from db import queries
from db.engine import get_engine, session_scope
from db.models import ReviewAnswer, ReviewEvent
from tests.factories import assign, make_account, make_reviewable_report

WORKERS = 8
ROUNDS = 12
SEVERITIES = ("mild", "moderate", "severe")


def _worker(url: str, actor: queries.Actor, finding_ids: list[int], seed: int, start,
            out) -> None:
    """Read the answer version, then write an edit based on it; count saves and conflicts."""
    saved, conflicts, other = [], 0, []
    start.wait()
    for i in range(ROUNDS):
        fid = finding_ids[(seed + i) % len(finding_ids)]
        with Session(get_engine(url)) as s:  # what this window shows
            row = s.exec(select(ReviewAnswer).where(ReviewAnswer.finding_id == fid,
                                                    ReviewAnswer.reviewer_id == actor.id)).first()
            seen = row.version if row else 0
        severity = SEVERITIES[(seed + i) % 3]
        with session_scope(url) as s:
            result = queries.answer_finding(fid, "edit", seen_version=seen, actor=actor,
                                            changes={"severity": severity}, session=s)
        if result.ok:
            saved.append((fid, seen + 1, severity))
        elif "another window" in result.message:
            conflicts += 1
        else:
            other.append(result.message)
    out.put((actor.id, saved, conflicts, other))


def test_eight_processes_conflicting_answers(db_url):
    with session_scope(db_url) as s:
        report, findings = make_reviewable_report(s)
        a, b = make_account(s, name="Dr A"), make_account(s, name="Dr B")
        assign(s, report.id, a, b)
    ids = [f.id for f in findings[:2]]  # two findings, so windows collide often
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(db_url, a if i < 6 else b, ids, i, start, out))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]  # spawn + imports are slow on a busy box
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(not other for *_, other in results), [o for *_, o in results if o]
    saves = [(rid, *s) for rid, saved, _, _ in results for s in saved]
    n_conflicts = sum(c for _, _, c, _ in results)
    assert len(saves) + n_conflicts == WORKERS * ROUNDS  # each attempt is one or the other
    assert n_conflicts > 0  # the windows did collide
    with Session(get_engine(db_url)) as s:
        rows = {(r.reviewer_id, r.finding_id): r for r in s.exec(select(ReviewAnswer))}
        events = list(s.exec(select(ReviewEvent).where(ReviewEvent.entity == "answer")
                             .order_by(ReviewEvent.id)))
    # every saved change is in the audit, once; no two saves claimed the same version
    assert len(events) == len(saves)
    audited = Counter((e.reviewer_id, json.loads(e.after_json)["finding_id"],
                       json.loads(e.after_json)["version"]) for e in events)
    assert audited == Counter((rid, fid, v) for rid, fid, v, _ in saves)
    # no update lost: each row's version counts its saves, its state is the last one audited
    for (rid, fid), row in rows.items():
        n = sum(1 for r, f, _, _ in saves if (r, f) == (rid, fid))
        assert row.version == n
        last = [e for e in events if e.reviewer_id == rid
                and json.loads(e.after_json)["finding_id"] == fid][-1]
        assert json.loads(last.after_json) == queries.answer_snapshot(row)
