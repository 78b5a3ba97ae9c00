"""Extraction racing review: a report's proposed findings of one extractor version are written
once, and a report a reviewer has started on never gets a second set (not even with --force).

The race is run for real: two ``python -m pipeline.extract --db`` processes on one store (a SQLite
file, or PostgreSQL under MEDFILIP_TEST_POSTGRES_URL), each against its own fake OpenAI server (one
answering in ~3 s, one in ~7 s, so both list every report before either stores one), while this
process accepts findings as they land.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import func, select

from db import queries
from db.engine import session_scope
from db.models import Finding, FindingStatus, Report, ReportExtraction
from pipeline.extract import cli
from tests.factories import make_reviewer, make_study
from tests.fakes.openai_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]
REPORT = "FINDINGS: Small left pleural effusion {i}. No pneumothorax. Mild cardiomegaly."
N_REPORTS = 12


def seed(db_url: str, n: int) -> list[int]:
    with session_scope(db_url) as s:
        for i in range(n):
            make_study(s, key=f"r{i}", report=REPORT.format(i=i))
        return list(s.exec(select(Report.id).order_by(Report.id)))


def duplicates(db_url: str) -> Counter:
    """(report, extractor version, category, presence, side, span) stored more than once."""
    with session_scope(db_url) as s:
        keys = Counter((f.report_id, f.extractor_version, f.category, f.presence, f.side,
                        f.evidence_start, f.evidence_end) for f in s.exec(select(Finding)))
    return Counter({k: n for k, n in keys.items() if n > 1})


def start_extract(db_url: str, base_url: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENAI_BASE_URL": base_url,
           "MEDFILIP_LLM_MAX_RETRIES": "0"}
    env.pop("OPENAI_API_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline.extract", "--db", db_url, "--extractor", "llm",
         "--model", "fake-model", "--concurrency", "32"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def accept_what_lands(db_url: str, reviewer, procs: list[subprocess.Popen],
                      deadline_s: float = 120.0) -> set[int]:
    """Act as a reviewer while the extractors run: accept every report's findings as they land."""
    accepted: set[int] = set()
    t_end = time.monotonic() + deadline_s
    while any(p.poll() is None for p in procs) and time.monotonic() < t_end:
        with session_scope(db_url) as s:
            rid = queries.next_unreviewed_report(session=s)
            if rid is not None:
                queries.accept_all_remaining(rid, reviewer=reviewer, session=s)
                accepted.add(rid)
        if rid is None:
            time.sleep(0.05)
    return accepted


@pytest.mark.slow
def test_two_extract_processes_and_a_reviewer_make_one_set_per_report(db_url):
    ids = seed(db_url, N_REPORTS)
    with session_scope(db_url) as s:
        reviewer = make_reviewer(s)
    with FakeOpenAIServer(latency_s=3.0) as quick, FakeOpenAIServer(latency_s=7.0) as slow:
        procs = [start_extract(db_url, quick.base_url), start_extract(db_url, slow.base_url)]
        accepted = accept_what_lands(db_url, reviewer, procs)
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outputs
        # both processes really asked for every report: the race happened
        assert (quick.calls, slow.calls) == (N_REPORTS, N_REPORTS), outputs
    assert accepted, "the reviewer accepted nothing while the extractors ran"
    assert duplicates(db_url) == Counter()
    with session_scope(db_url) as s:
        markers = Counter(s.exec(select(ReportExtraction.report_id)))
        per_report = Counter(s.exec(select(Finding.report_id)))
    assert markers == Counter(ids)  # one marker per report
    assert set(per_report.values()) == {3}  # effusion, pneumothorax, cardiomegaly: once each


def test_force_never_gives_a_report_under_review_a_second_set(db_url, capsys):
    ids = seed(db_url, 3)
    assert cli.main(["--db", db_url]) == 0
    with session_scope(db_url) as s:
        reviewer = make_reviewer(s)
        [first, *_] = s.exec(select(Finding).where(Finding.report_id == ids[0])).all()
        assert queries.decide_finding(first.id, "accept", version=first.version,
                                      reviewer=reviewer, session=s).ok
        [other, *_] = s.exec(select(Finding).where(Finding.report_id == ids[1])).all()
        assert queries.decide_finding(other.id, "reject", version=other.version,
                                      reviewer=reviewer, session=s).ok
        assert queries.undo_last(ids[1], reviewer=reviewer, session=s).ok  # proposed again
        before = {f.id: (f.report_id, f.created_at) for f in s.exec(select(Finding))}
    capsys.readouterr()
    assert cli.main(["--db", db_url, "--force"]) == 0
    assert "2 reports under review left alone" in capsys.readouterr().out
    with session_scope(db_url) as s:
        after = {f.id: (f.report_id, f.created_at) for f in s.exec(select(Finding))}
        statuses = Counter(s.exec(select(Finding.status).where(Finding.report_id == ids[0])))
    # the two reviewed reports keep exactly their rows; the third gets a fresh set, once
    for rid in ids[:2]:
        assert {k: v for k, v in after.items() if v[0] == rid} == {
            k: v for k, v in before.items() if v[0] == rid}
    fresh = {k: v for k, v in after.items() if v[0] == ids[2]}
    assert len(fresh) == 3 and all(v != before.get(k) for k, v in fresh.items())
    assert statuses[FindingStatus.accepted] == 1
    assert duplicates(db_url) == Counter()


def test_a_second_writer_of_the_same_version_is_skipped(db_url):
    [rid] = seed(db_url, 1)
    row = {"category": "edema", "presence": "present", "evidence_start": 0,
           "evidence_end": 9, "evidence_text": "FINDINGS:"}
    with session_scope(db_url) as s:
        assert queries.replace_proposed_findings(rid, "rules", "v1", [row], session=s).stored == 1
    with session_scope(db_url) as s:
        late = queries.replace_proposed_findings(rid, "rules", "v1", [row, row], session=s)
        assert (late.stored, late.skipped) == (0, "done")
        n = s.exec(select(func.count()).select_from(Finding)).one()
    assert n == 1


@pytest.mark.parametrize("force", [False, True])
def test_a_write_to_a_report_a_reviewer_started_on_is_refused(db_url, force):
    """The write checks again, after its claim: a review that began after the run listed the
    report still wins, and the refused write leaves no marker behind."""
    [rid] = seed(db_url, 1)
    row = {"category": "edema", "presence": "present", "evidence_start": 0,
           "evidence_end": 9, "evidence_text": "FINDINGS:"}
    with session_scope(db_url) as s:
        queries.replace_proposed_findings(rid, "rules", "v1", [row], session=s)
        [f] = s.exec(select(Finding)).all()
        reviewer = make_reviewer(s)
        assert queries.decide_finding(f.id, "reject", version=1, reviewer=reviewer, session=s).ok
        assert queries.undo_last(rid, reviewer=reviewer, session=s).ok  # all proposed again
    with session_scope(db_url) as s:
        late = queries.replace_proposed_findings(rid, "rules", "v2", [row], force=force,
                                                 session=s)
        assert late == queries.StoredFindings(0, "under review")
        versions = set(s.exec(select(ReportExtraction.extractor_version)))
        assert [x.extractor_version for x in s.exec(select(Finding))] == ["v1"]
    assert versions == {"v1"}
