"""`python -m pipeline.extract --db URL --extractor llm` end to end: the real openai client over
HTTP to the fake server, Finding rows with the prompt version and model, errors recorded, and a
rerun that makes no call."""

from __future__ import annotations

from sqlmodel import select

from db.engine import session_scope
from db.models import ExtractionError, Finding, FindingStatus, LLMCall, Report
from pipeline.extract import cli as extract
from pipeline.extract.llm.prompt import PROMPT_VERSION
from tests.factories import make_study
from tests.fakes import finding
from tests.fakes.openai_server import answer, invalid_json

GOOD = "FINDINGS: Small right pleural effusion. No pneumothorax.\nIMPRESSION: Effusion."
BROKEN = "FINDINGS: Mild cardiomegaly.\nIMPRESSION: Cardiomegaly."


def test_db_mode_over_http(fake, db_url, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-never-stored")
    monkeypatch.setenv("MEDFILIP_LLM_MAX_RETRIES", "0")
    fake.script("Small right", answer({"findings": [
        finding("pleural_effusion", "Small right pleural effusion.", severity="mild", side="right"),
        finding("pneumothorax", "No pneumothorax.", presence="absent"),
        finding("edema", "Diffuse edema.")]}))  # quotes text that is not in the report
    fake.script("Mild cardiomegaly", invalid_json())
    with session_scope(db_url) as s:
        make_study(s, key="a", report=GOOD)
        make_study(s, key="b", report=BROKEN)
    argv = ["--db", db_url, "--extractor", "llm", "--base-url", fake.base_url,
            "--model", "fake-model", "--concurrency", "4"]

    assert extract.main(argv) == 0  # one report failed, not all
    with session_scope(db_url) as s:
        rows = s.exec(select(Finding).order_by(Finding.category)).all()
        errors = [e.message for e in s.exec(select(ExtractionError))]
        good_id = s.exec(select(Report.id).where(Report.text == GOOD)).one()
        calls = s.exec(select(LLMCall)).all()
    assert [(f.category, f.presence.value, f.report_id) for f in rows] == [
        ("pleural_effusion", "present", good_id), ("pneumothorax", "absent", good_id)]
    assert all(f.status == FindingStatus.proposed and f.prompt_version == PROMPT_VERSION
               and f.model_name == "fake-model" for f in rows)
    assert GOOD[rows[0].evidence_start:rows[0].evidence_end] == rows[0].evidence_text
    assert any("invalid JSON" in e for e in errors)
    assert any("edema" in e and "not in report" in e for e in errors)
    assert all(c.prompt_tokens > 0 for c in calls)
    assert "sk-test-secret" not in capsys.readouterr().out

    calls_before = fake.calls
    assert extract.main(argv) == 1  # only the broken report is retried, and it fails again
    assert fake.calls == calls_before + 1
