"""`python -m pipeline.knowledge draft`: LLM drafts for used subclasses the dictionary lacks,
over real HTTP to the fake server; bad answers are reported and not stored."""

from __future__ import annotations

import json

from sqlmodel import select

from db import queries
from db.engine import session_scope
from db.models import KnowledgeEntry, KnowledgeSource, KnowledgeStatus, Report, ReviewEvent
from pipeline import vocab
from pipeline.knowledge import cli, draft
from pipeline.knowledge.draft import parse_draft
from tests.factories import make_knowledge_entry, make_study
from tests.fakes.openai_server import answer, invalid_json

APICAL = "A small round density projecting over the lung apex, often obscured by the clavicle."


REPORT = ("FINDINGS: Apical nodule. Small costophrenic effusion. No severe edema.\n"
          "IMPRESSION: Nodule.")


def seed_findings(db_url: str) -> None:
    def quoted(q: str) -> dict:
        return {"evidence_start": REPORT.index(q), "evidence_end": REPORT.index(q) + len(q),
                "evidence_text": q}

    rows = [{"category": "nodule", "presence": "present", "region": "apical",
             **quoted("Apical nodule.")},
            {"category": "pleural_effusion", "presence": "present", "severity": "mild",
             "region": "costophrenic", **quoted("Small costophrenic effusion.")},
            {"category": "edema", "presence": "absent", "severity": "severe",  # absent: no key
             **quoted("No severe edema.")}]
    with session_scope(db_url) as s:
        make_study(s, key="k", report=REPORT)
        report_id = s.exec(select(Report.id)).one()
        queries.replace_proposed_findings(report_id, "rules", "1", rows, session=s)


def test_drafts_missing_subclasses_and_records_failures(fake, db_url, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("MEDFILIP_LLM_MAX_RETRIES", "0")
    seed_findings(db_url)
    assert cli.main(["sync", "--db", db_url]) == 0
    iki = vocab.load_iki()
    used = {("nodule", "region:apical"), ("pleural_effusion", "severity:mild"),
            ("pleural_effusion", "region:costophrenic")}
    missing = {k for k in used if k[1] not in iki.get(k[0], {})}
    assert ("nodule", "region:apical") in missing  # the test needs one good and one bad key
    assert ("pleural_effusion", "region:costophrenic") in missing
    fake.script("Subclass: region = apical", answer({"explanation": APICAL}))
    fake.script("Subclass: region = costophrenic", invalid_json())

    cli.main(["draft", "--db", db_url, "--model", "fake-model"])
    out = capsys.readouterr().out
    assert "pleural_effusion region:costophrenic: invalid JSON from model" in out
    with session_scope(db_url) as s:
        drafts = {(e.category, e.subclass): e for e in s.exec(
            select(KnowledgeEntry).where(KnowledgeEntry.source == KnowledgeSource.llm_draft))}
        events = s.exec(select(ReviewEvent).where(ReviewEvent.action == "llm-draft")).all()
    assert drafts[("nodule", "region:apical")].explanation == APICAL
    assert drafts[("nodule", "region:apical")].status == KnowledgeStatus.draft
    assert ("pleural_effusion", "region:costophrenic") not in drafts
    assert {json.loads(e.after_json)["subclass"] for e in events} == {k[1] for k in drafts}
    assert fake.calls == len(missing)

    calls = fake.calls  # a rerun asks only for what is still missing: the failed key
    cli.main(["draft", "--db", db_url, "--model", "fake-model"])
    assert fake.calls == calls + 1
    assert cli.main(["sync", "--db", db_url]) == 0  # sync leaves the drafts alone
    with session_scope(db_url) as s:
        entry = s.exec(select(KnowledgeEntry).where(KnowledgeEntry.subclass == "region:apical",
                                                    KnowledgeEntry.category == "nodule")).one()
    assert (entry.explanation, entry.status) == (APICAL, KnowledgeStatus.draft)


def test_parse_draft_rejects_unusable_answers():
    assert parse_draft('{"explanation": "  Thin  white line. "}') == "Thin white line."
    for bad, reason in [("not json", "invalid JSON"), ('{"text": "x"}', "no string"),
                        ('{"explanation": "   "}', "empty"),
                        (json.dumps({"explanation": "word " * 200}), "words")]:
        try:
            parse_draft(bad)
        except ValueError as exc:
            assert reason in str(exc)
        else:
            raise AssertionError(f"accepted {bad!r}")


def test_an_entry_added_while_the_llm_drafts_is_kept(fake, db_url, monkeypatch, capsys):
    """A reviewer adds the subclass while its draft is being written: theirs stays, the draft is
    dropped with a reason, and the run goes on."""
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("MEDFILIP_LLM_MAX_RETRIES", "0")
    seed_findings(db_url)
    fake.script("Subclass: region = apical", answer({"explanation": APICAL}))
    real = draft._draft_all

    async def draft_then_add(*args, **kw):
        outcomes = await real(*args, **kw)
        with session_scope(db_url) as s:
            make_knowledge_entry(s, category="nodule", subclass="region:apical",
                                 explanation="Written by a reviewer.")
        return outcomes

    monkeypatch.setattr(draft, "_draft_all", draft_then_add)
    cli.main(["draft", "--db", db_url, "--model", "fake-model"])
    assert "nodule region:apical: an entry was added meanwhile" in capsys.readouterr().out
    with session_scope(db_url) as s:
        entry = s.exec(select(KnowledgeEntry).where(KnowledgeEntry.category == "nodule",
                                                    KnowledgeEntry.subclass == "region:apical")
                       ).one()
        events = s.exec(select(ReviewEvent).where(ReviewEvent.entity_id == entry.id)).all()
    assert (entry.explanation, entry.source) == ("Written by a reviewer.", KnowledgeSource.written)
    assert events == []  # the dropped draft wrote no audit event either
