"""python -m pipeline.export: the CheXpert CSV read back with pandas matches the settled labels
value for value; JSONL / Parquet hold one row per finding; filters; pseudonymous keys only."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from sqlmodel import Session

from db import queries
from db.engine import get_engine, session_scope
from pipeline import chexpert
from pipeline.export.cli import main
from tests.factories import make_reviewed_corpus


@pytest.fixture
def corpus(db_url, data_dir):
    with session_scope(db_url) as s:
        a, b, reports = make_reviewed_corpus(s, n=8, data_dir=data_dir)
        # one single review with an added uncertain finding and a rejected proposal
        extra = reports[1]
        quote = "Left effusion."
        start = extra.text.index(quote)
        assert queries.add_answer(extra.id, {
            "category": "atelectasis", "presence": "uncertain", "evidence_start": start,
            "evidence_end": start + len(quote), "evidence_text": quote}, actor=a, session=s).ok
    return db_url


def settled(db_url):
    with Session(get_engine(db_url)) as s:
        reports = queries.settled_reports(session=s)
        return reports, queries.settled_findings(session=s, reports=reports)


def test_chexpert_csv_matches_the_settled_labels(corpus, tmp_path, capsys):
    out = tmp_path / "labels.csv"
    assert main(["--db", corpus, "--format", "chexpert", "--out", str(out)]) == 0
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(df.columns[:5]) == ["Path", "study_key", "image_key", "view", "split"]
    assert list(df.columns[5:19]) == list(chexpert.COLUMNS)
    assert "nodule" in df.columns and "granuloma" in df.columns
    reports, findings = settled(corpus)
    assert len(reports) == 6  # 8 reports, 2 disputed (reports 0 and 4) are left out
    assert len(df) == sum(len(r.images) for r in reports)
    by_study = {r.study_key: r for r in reports}
    checked = 0
    for _, row in df.iterrows():
        r = by_study[row["study_key"]]
        mine = [f for f in findings if f.report_id == r.report_id]
        want = {}
        for f in mine:  # fold by hand: present 1 > uncertain -1 > absent 0
            v = {"present": 1, "uncertain": -1, "absent": 0}[f.presence]
            old = want.get(f.category)
            if old is None or {1: 2, -1: 1, 0: 0}[v] > {1: 2, -1: 1, 0: 0}[old]:
                want[f.category] = v
        for col, cat in chexpert.COLUMNS.items():
            if cat is None:
                positive = any(v in (1, -1) for c, v in want.items() if c != "support_devices")
                assert row[col] == ("" if positive else "1"), col
            else:
                assert row[col] == (str(want[cat]) if cat in want else ""), (col, r.report_id)
            checked += 1
        assert row["Path"] == r.images[0][1] and row["image_key"] == r.images[0][0]
    assert checked == 14 * len(df)
    assert df.loc[df.study_key == reports[0].study_key, "Pleural Effusion"].item() == "1"
    assert df.loc[df.study_key == reports[0].study_key, "Pneumothorax"].item() == "0"
    assert df.loc[df.study_key == reports[0].study_key, "Atelectasis"].item() == "-1"
    assert "reports=6" in capsys.readouterr().out


def test_jsonl_and_parquet_hold_one_row_per_finding(corpus, tmp_path):
    jsonl, parquet = tmp_path / "f.jsonl", tmp_path / "f.parquet"
    assert main(["--db", corpus, "--format", "jsonl", "--out", str(jsonl)]) == 0
    assert main(["--db", corpus, "--format", "parquet", "--out", str(parquet)]) == 0
    rows = [json.loads(line) for line in jsonl.read_text().splitlines()]
    _, findings = settled(corpus)
    assert len(rows) == len(findings) == len(pd.read_parquet(parquet))
    row = rows[0]
    assert {"category", "presence", "severity", "side", "region", "evidence_start",
            "evidence_end", "evidence_text", "status", "reviewers", "extractor_version",
            "study_key", "patient_key", "settled"} <= set(row)
    assert row["reviewers"] == ["Dr A"] and row["extractor_version"] == "rules-1"
    added = [r for r in rows if r["status"] == "added"]
    assert [(r["category"], r["extractor"]) for r in added] == [("atelectasis", "human")]
    assert not any("patient_id" in k or "name" in k for k in row)


def test_filters_status_reviewer_split_since(corpus, tmp_path):
    out = tmp_path / "x.jsonl"
    assert main(["--db", corpus, "--format", "jsonl", "--out", str(out),
                 "--status", "rejected"]) == 0
    assert {json.loads(x)["status"] for x in out.read_text().splitlines()} <= {"rejected"}
    assert main(["--db", corpus, "--format", "jsonl", "--out", str(out),
                 "--reviewer", "Dr B"]) == 0
    assert {tuple(json.loads(x)["reviewers"]) for x in out.read_text().splitlines()} == {
        ("Dr A", "Dr B")}
    assert main(["--db", corpus, "--format", "jsonl", "--out", str(out),
                 "--since", "2999-01-01"]) == 0
    assert out.read_text() == ""
    assert main(["--db", corpus, "--format", "jsonl", "--out", str(out), "--split", "val"]) == 0
    assert out.read_text() == ""
    assert main(["--db", corpus, "--format", "jsonl", "--out", str(out),
                 "--status", "maybe"]) == 2
