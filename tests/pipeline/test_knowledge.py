"""`python -m pipeline.knowledge sync`: loads iki.yaml, never overwrites reviewed edits."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from db import queries
from db.engine import session_scope
from db.models import KnowledgeEntry, KnowledgeSource, KnowledgeStatus, Reviewer, ReviewEvent
from pipeline import vocab
from pipeline.knowledge import cli, sync
from tests.factories import make_knowledge_entry, make_reviewer


def entries(db_url) -> dict[tuple[str, str], KnowledgeEntry]:
    with session_scope(db_url) as s:
        return {(e.category, e.subclass): e for e in s.exec(select(KnowledgeEntry))}


@pytest.fixture
def fake_iki(monkeypatch):
    """A two-entry dictionary whose texts a test can change between syncs."""
    data = {"pleural_effusion": {"": "fluid v1", "severity:mild": "small v1"}}
    monkeypatch.setattr(vocab, "load_iki", lambda: data)
    return data


def test_sync_loads_every_category_as_written_and_approved(db_url, capsys):
    assert cli.main(["sync", "--db", db_url]) == 0
    rows = entries(db_url)
    iki = vocab.load_iki()
    assert len(rows) == sum(len(v) for v in iki.values())
    for cid in vocab.load_vocabulary():
        row = rows[(cid, "")]
        assert row.explanation == iki[cid][""]
        assert row.source == KnowledgeSource.written and row.status == KnowledgeStatus.approved
    assert "create" in capsys.readouterr().out


def test_second_sync_changes_nothing(db_url):
    sync.sync_knowledge(db_url)
    before = {k: (e.version, e.updated_at) for k, e in entries(db_url).items()}
    counts = sync.sync_knowledge(db_url)
    assert counts["unchanged"] == len(before) and counts["create"] == counts["update"] == 0
    assert {k: (e.version, e.updated_at) for k, e in entries(db_url).items()} == before


def test_a_changed_file_updates_untouched_entries_and_audits_it(db_url, fake_iki):
    sync.sync_knowledge(db_url)
    fake_iki["pleural_effusion"][""] = "fluid v2"
    counts = sync.sync_knowledge(db_url)
    assert counts["update"] == 1
    row = entries(db_url)[("pleural_effusion", "")]
    assert row.explanation == "fluid v2" and row.version == 2
    with session_scope(db_url) as s:
        events = s.exec(select(ReviewEvent).where(ReviewEvent.entity_id == row.id)).all()
    assert [e.action for e in events] == ["sync", "sync"]
    assert events[-1].reviewer_id is None and "fluid v1" in events[-1].before_json
    # a third sync after the update is a no-op: the sync recognises its own last write
    assert sync.sync_knowledge(db_url)["unchanged"] == 2


def test_reviewed_edits_are_never_overwritten(db_url, fake_iki):
    sync.sync_knowledge(db_url)
    with session_scope(db_url) as s:
        reviewer = Reviewer(name="dr-a")
        s.add(reviewer)
        s.flush()
        rows = {(e.category, e.subclass): e for e in s.exec(select(KnowledgeEntry))}
        # edited text, no reviewer recorded (e.g. a bulk fix): still someone else's text
        rows[("pleural_effusion", "")].explanation = "edited by hand"
        # same text, but a reviewer signed it off
        rows[("pleural_effusion", "severity:mild")].reviewer_id = reviewer.id
    fake_iki["pleural_effusion"][""] = "fluid v2"
    fake_iki["pleural_effusion"]["severity:mild"] = "small v2"
    counts = sync.sync_knowledge(db_url)
    assert counts["kept-reviewed"] == 2 and counts["update"] == 0
    rows = entries(db_url)
    assert rows[("pleural_effusion", "")].explanation == "edited by hand"
    assert rows[("pleural_effusion", "severity:mild")].explanation == "small v1"


def test_llm_drafts_and_rows_without_a_sync_event_are_left_alone(db_url, fake_iki):
    with session_scope(db_url) as s:
        s.add(KnowledgeEntry(category="pleural_effusion", subclass="", explanation="llm text",
                             source=KnowledgeSource.llm_draft, status=KnowledgeStatus.draft))
        s.add(KnowledgeEntry(category="pleural_effusion", subclass="severity:mild",
                             explanation="seeded elsewhere"))
    counts = sync.sync_knowledge(db_url)
    assert counts["kept-draft"] == 1 and counts["kept-reviewed"] == 1
    rows = entries(db_url)
    assert rows[("pleural_effusion", "")].explanation == "llm text"
    assert rows[("pleural_effusion", "severity:mild")].explanation == "seeded elsewhere"


def test_dry_run_writes_nothing(db_url, capsys):
    assert cli.main(["sync", "--db", db_url, "--dry-run"]) == 0
    assert entries(db_url) == {}
    assert "would be" in capsys.readouterr().out


def test_plan_action_rule():
    e = KnowledgeEntry(category="c", subclass="", explanation="old")
    assert sync.plan_action(None, "new", None) == "create"
    assert sync.plan_action(e, "old", None) == "unchanged"
    assert sync.plan_action(e, "new", "old") == "update"
    assert sync.plan_action(e, "new", None) == "kept-reviewed"
    assert sync.plan_action(e, "new", "older") == "kept-reviewed"


def test_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "python -m pipeline.knowledge sync" in capsys.readouterr().out


def test_an_edit_between_the_syncs_read_and_write_is_kept(db_url, fake_iki, monkeypatch):
    """A reviewer saves an entry while the sync runs: the sync's version-checked write misses,
    and it says so, instead of overwriting the edit."""
    sync.sync_knowledge(db_url)
    with session_scope(db_url) as s:
        reviewer = make_reviewer(s)
    fake_iki["pleural_effusion"][""] = "fluid v2"
    plan = sync.plan_action

    def plan_then_edit(entry, text, last_synced):
        action = plan(entry, text, last_synced)  # the sync has read the entry and decided
        if entry is not None and entry.subclass == "":
            with session_scope(db_url) as other:
                assert queries.update_knowledge(
                    entry.id, version=entry.version, explanation="reviewer text",
                    status=KnowledgeStatus.approved, reviewer=reviewer, session=other).ok
        return action

    monkeypatch.setattr(sync, "plan_action", plan_then_edit)
    counts = sync.sync_knowledge(db_url)
    assert counts["kept-concurrent"] == 1 and counts["update"] == 0
    row = entries(db_url)[("pleural_effusion", "")]
    assert (row.explanation, row.reviewer_id, row.version) == ("reviewer text", reviewer.id, 2)
    with session_scope(db_url) as s:
        actions = [e.action for e in s.exec(select(ReviewEvent).where(
            ReviewEvent.entity_id == row.id).order_by(ReviewEvent.id))]
    assert actions == ["sync", "edit"]


def test_an_entry_created_between_the_syncs_read_and_write_is_kept(db_url, fake_iki,
                                                                    monkeypatch):
    plan = sync.plan_action

    def plan_then_create(entry, text, last_synced):
        action = plan(entry, text, last_synced)
        if entry is None:  # someone else creates the very key the sync is about to create
            with session_scope(db_url) as other:
                make_knowledge_entry(other, subclass="severity:mild", explanation="theirs")
        return action

    monkeypatch.setattr(sync, "plan_action", plan_then_create)
    fake_iki["pleural_effusion"] = {"severity:mild": "small v1"}
    assert sync.sync_knowledge(db_url)["kept-concurrent"] == 1
    assert entries(db_url)[("pleural_effusion", "severity:mild")].explanation == "theirs"


def test_sync_events_record_the_rows_they_wrote(db_url, fake_iki):
    sync.sync_knowledge(db_url)
    fake_iki["pleural_effusion"][""] = "fluid v2"
    sync.sync_knowledge(db_url)
    with session_scope(db_url) as s:
        for entry in s.exec(select(KnowledgeEntry)):
            last = s.exec(select(ReviewEvent).where(ReviewEvent.entity_id == entry.id)
                          .order_by(ReviewEvent.id.desc())).first()
            assert json.loads(last.after_json) == queries.knowledge_snapshot(entry)
