"""Eight processes review the same findings of one store at once, as a team would (on SQLite, and
on PostgreSQL in `make test`'s second pass): every write is version-checked, so none is lost, and
the audit has exactly one event per write, chained version after version."""

from __future__ import annotations

import json
import multiprocessing
import queue

from sqlmodel import Session, select

import tests.db.reviewer_process as reviewer_process
from db.engine import get_engine, session_scope
from db.models import Finding, ReviewerRole, ReviewEvent
from tests.factories import make_reviewable_report, make_reviewer

N_PROCESSES = 8
WRITES_EACH = 12  # successful writes per process
FINDINGS = 3  # few rows, so the processes collide on them


def _run_reviewers(url: str, reviewer_ids: list[int], finding_ids: list[int]) -> list[tuple]:
    """(reviewer_id, writes, conflicts) of each reviewer process, once all are done."""
    # A fork server: each reviewer is a fresh process (no engine or connection of ours is
    # shared), forked from one that imported the reviewer's module once; spawning 8
    # interpreters that each import SQLModel takes ~13 s on a busy 2-core machine.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([reviewer_process.__name__])
    start, out = ctx.Barrier(len(reviewer_ids)), ctx.Queue()
    procs = [ctx.Process(target=reviewer_process.review,
                         args=(url, rid, finding_ids, WRITES_EACH, start, out))
             for rid in reviewer_ids]
    for p in procs:
        p.start()
    results: list[tuple] = []
    try:
        while len(results) < len(procs):
            try:
                results.append(out.get(timeout=1))
            except queue.Empty:  # a reviewer that died (or hung: see HANG_S) sends nothing
                dead = {p.pid: p.exitcode for p in procs if p.exitcode not in (None, 0)}
                assert not dead, f"reviewer processes exited without a result: {dead}"
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [error for *_, error in results if error]
    assert not errors, errors[0]
    return [r[:3] for r in results]


def test_eight_processes_lose_no_update_and_audit_every_write(db_url):
    with session_scope(db_url) as s:
        _, findings = make_reviewable_report(s)
        # Adjudicators: each decision changes the row, so every write races every other.
        reviewers = [make_reviewer(s, name=f"Dr {i}", role=ReviewerRole.adjudicator)
                     for i in range(N_PROCESSES)]
    finding_ids = [f.id for f in findings][:FINDINGS]

    results = _run_reviewers(db_url, [r.id for r in reviewers], finding_ids)

    writes = sum(w for _, w, _ in results)
    assert writes == N_PROCESSES * WRITES_EACH
    assert sum(c for _, _, c in results) > 0, "the processes never collided: no race was tested"
    with Session(get_engine(db_url)) as s:
        events = list(s.exec(select(ReviewEvent).where(ReviewEvent.entity == "finding")
                             .order_by(ReviewEvent.id)))
        rows = {f.id: f for f in s.exec(select(Finding).where(Finding.id.in_(finding_ids)))}
    assert len(events) == writes  # one audit row per write, none for a refused one
    per_reviewer = {rid: w for rid, w, _ in results}
    assert {rid: sum(e.reviewer_id == rid for e in events) for rid in per_reviewer} == per_reviewer
    for fid, row in rows.items():
        chain = [(json.loads(e.before_json), json.loads(e.after_json)) for e in events
                 if e.entity_id == fid]
        # No lost update: each version was written once, each write built on the one before.
        assert [a["version"] for _, a in chain] == list(range(2, len(chain) + 2))
        assert all(b["version"] == a["version"] - 1 and a["_applied"] for b, a in chain)
        for (_, earlier), (later_before, _) in zip(chain, chain[1:], strict=False):
            assert later_before == {k: v for k, v in earlier.items() if not k.startswith("_")}
        assert chain, f"finding {fid} was never written"
        last = chain[-1][1]  # the audit's last "after" is the row as it stands
        assert (last["status"], last["reviewer_id"], last["version"]) == (
            str(row.status), row.reviewer_id, row.version)
