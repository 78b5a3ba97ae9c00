"""AppTest of the Knowledge page: IKI entries by category, edit, approve, add a subclass entry."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from curation_app import state
from db import queries
from db.engine import get_engine, session_scope
from db.models import KnowledgeEntry, KnowledgeSource, KnowledgeStatus, ReviewEvent
from pipeline.knowledge.sync import plan_action, sync_knowledge
from tests.factories import PAGES, make_reviewer


@pytest.fixture
def env(app_store):
    sync_knowledge(app_store)  # the written dictionary, as `pipeline.knowledge.sync sync` loads it
    with session_scope(app_store) as s:
        draft = KnowledgeEntry(category="atelectasis", subclass="region:apical",
                               explanation="Apical collapse draft.",
                               source=KnowledgeSource.llm_draft, status=KnowledgeStatus.draft)
        s.add(draft)
        s.flush()
        a, b = make_reviewer(s, name="Dr A"), make_reviewer(s, name="Dr B")
        written = queries.get_knowledge_entries(session=s)["atelectasis", ""]
    return SimpleNamespace(url=app_store, draft=draft, written=written, a=a, b=b)


def knowledge(reviewer_id: int | None) -> AppTest:
    at = AppTest.from_file(str(PAGES / "knowledge.py"), default_timeout=30)
    if reviewer_id is not None:
        at.session_state[state.KEY_REVIEWER] = reviewer_id
    at.run()
    assert not at.exception, at.exception
    return at


def entry(url, entry_id) -> KnowledgeEntry:
    with Session(get_engine(url)) as s:
        return s.get(KnowledgeEntry, entry_id)


def test_lists_entries_with_source_and_provenance(env):
    at = knowledge(env.a.id)
    assert at.selectbox(key=state.KEY_K_CATEGORY).value == "atelectasis"
    text = " ".join(m.value for m in at.markdown)
    assert ":blue-badge[written]" in text and ":orange-badge[llm-draft]" in text
    assert any("as synced from iki.yaml" in c.value for c in at.caption)
    assert at.text_area(key=f"kexpl_{env.written.id}_v1").value == env.written.explanation
    # only drafts offer Approve
    assert at.button(key=f"kapprove_{env.draft.id}")
    assert not [b for b in at.button if b.key == f"kapprove_{env.written.id}"]


def test_edit_an_explanation_and_the_sync_keeps_it(env):
    at = knowledge(env.a.id)
    at.text_area(key=f"kexpl_{env.written.id}_v1").input("Volume loss, edited by A.")
    at.button(key=f"ksave_{env.written.id}").click().run()
    assert at.success, [e.value for e in at.error]
    got = entry(env.url, env.written.id)
    assert (got.explanation, got.version, got.reviewer_id, got.status) == (
        "Volume loss, edited by A.", 2, env.a.id, KnowledgeStatus.approved)
    assert any("reviewed by Dr A" in c.value for c in at.caption)
    assert plan_action(got, env.written.explanation, env.written.explanation) == "kept-reviewed"
    assert sync_knowledge(env.url)["kept-reviewed"] >= 1
    assert entry(env.url, env.written.id).explanation == "Volume loss, edited by A."


def test_approve_a_draft(env):
    at = knowledge(env.a.id)
    at.button(key=f"kapprove_{env.draft.id}").click().run()
    got = entry(env.url, env.draft.id)
    assert (got.status, got.reviewer_id, got.version) == (KnowledgeStatus.approved, env.a.id, 2)
    assert not [b for b in at.button if b.key == f"kapprove_{env.draft.id}"]
    with Session(get_engine(env.url)) as s:
        [event] = s.exec(select(ReviewEvent).where(ReviewEvent.entity == "knowledge",
                                                   ReviewEvent.entity_id == env.draft.id)).all()
    assert (event.action, event.reviewer_id) == ("approve", env.a.id)


def test_stale_save_is_a_conflict(env):
    at = knowledge(env.a.id)
    with session_scope(env.url) as s:
        assert queries.update_knowledge(env.draft.id, version=1, explanation="B's text.",
                                        status=KnowledgeStatus.draft, reviewer=env.b,
                                        session=s).ok
    at.text_area(key=f"kexpl_{env.draft.id}_v1").input("A's text.")
    at.button(key=f"ksave_{env.draft.id}").click().run()
    assert "changed by Dr B" in at.error[0].value
    assert entry(env.url, env.draft.id).explanation == "B's text."
    assert at.text_area(key=f"kexpl_{env.draft.id}_v2").value == "B's text."


def test_add_a_subclass_entry(env):
    at = knowledge(env.a.id)
    at.text_input(key="knew_subclass").input("severity:severe")
    at.text_area(key="knew_explanation").input("Whole-lobe collapse.")
    at.button(key="knew_add").click().run()
    assert at.success, [e.value for e in at.error]
    with Session(get_engine(env.url)) as s:
        new = s.exec(select(KnowledgeEntry).where(KnowledgeEntry.subclass == "severity:severe",
                                                  KnowledgeEntry.category == "atelectasis")).one()
    assert (new.status, new.source, new.reviewer_id) == (
        KnowledgeStatus.draft, KnowledgeSource.written, env.a.id)


def test_read_only_without_reviewer(env):
    at = knowledge(None)
    assert at.warning and at.button(key=f"ksave_{env.written.id}").disabled
