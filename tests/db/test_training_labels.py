"""Training reads the settled label (blind double review, adjudication), not the extractor rows."""

from __future__ import annotations

from collections import Counter

from sqlmodel import Session

from db import queries
from db.engine import get_engine
from tests.factories import make_reviewed_corpus


def test_label_rows_are_the_settled_answers_and_disputes_stay_proposed(db_url):
    with Session(get_engine(db_url)) as s:
        # 12 reports, 3 proposals each: every 2nd double-reviewed; every 4th of those disputed
        # (B rejects the third proposal), the rest settled (single, or both reviewers agree)
        _, _, reports = make_reviewed_corpus(s, n=12)
        s.commit()
        rows = queries.list_label_rows(session=s, splits=("train",))
        settled = {r.report_id for r in queries.settled_reports(session=s, split="train")}
        study_of = {rep.id: rep.study_id for rep in reports}
    disputed = {rid for rid in study_of if rid not in settled}
    assert len(disputed) == 3 and len(settled) == 9
    by_study = Counter((r.study_id, r.status) for r in rows)
    for rid, sid in study_of.items():
        # each report gives its three findings once: settled ones as A answered (accepted),
        # disputed ones as the extractor proposed them (trainable only with --include-proposed)
        assert by_study[sid, "proposed" if rid in disputed else "accepted"] == 3
    assert len(rows) == 36
    counts = queries.count_findings_by_status(session=s, splits=("train",))
    assert counts == {"accepted": 27, "proposed": 9}
