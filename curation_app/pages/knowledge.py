"""Knowledge: review the IKI explanations (MedFILIP §3.2) that the SSM label texts carry.

Edit or approve an entry, add a subclass entry. A reviewer's save sets ``reviewer_id``, so
``python -m pipeline.knowledge sync`` never overwrites it afterwards.
"""

from __future__ import annotations

import streamlit as st

from curation_app import reviewer as rv
from curation_app import state
from db import queries
from db.models import KnowledgeEntry, KnowledgeSource, KnowledgeStatus
from db.queries import Actor, Permission
from pipeline import vocab

SOURCE_BADGE = {KnowledgeSource.written: ":blue-badge[written]",
                KnowledgeSource.llm_draft: ":orange-badge[llm-draft]"}
STATUS_BADGE = {KnowledgeStatus.approved: ":green-badge[approved]",
                KnowledgeStatus.draft: ":gray-badge[draft]"}


def _provenance(entry: KnowledgeEntry, synced: dict[int, str], names: dict[int, str]) -> str:
    """Where the current text comes from: the sync (iki.yaml) as written, or a reviewer."""
    if entry.reviewer_id is not None:
        return f"reviewed by {names.get(entry.reviewer_id, entry.reviewer_id)}"
    if synced.get(entry.id) == entry.explanation:
        return "as synced from iki.yaml"
    return "not from the sync"


def _entry(entry: KnowledgeEntry, synced: dict[int, str], names: dict[int, str],
           actor: Actor | None) -> None:
    can_write = actor is not None
    can_approve = can_write and actor.can(Permission.approve_knowledge)
    source, status = KnowledgeSource(entry.source), KnowledgeStatus(entry.status)
    with st.container(border=True, key=f"kentry_{entry.id}"):
        st.markdown(f"**{entry.subclass or '(category)'}** {SOURCE_BADGE[source]} "
                    f"{STATUS_BADGE[status]}")
        st.caption(f"{_provenance(entry, synced, names)} · v{entry.version} · updated "
                   f"{entry.updated_at:%Y-%m-%d %H:%M}")
        # the version in the key: after any write the box shows the stored text afresh
        text_key, status_key = f"kexpl_{entry.id}_v{entry.version}", f"kstatus_{entry.id}"
        st.text_area("Explanation", entry.explanation, key=text_key, disabled=not can_write,
                     label_visibility="collapsed")
        c = st.columns([2, 1, 1, 4])
        # a reviewer's save makes a draft awaiting approval, which takes an adjudicator or an
        # admin (the db write checks it too)
        statuses = ([s.value for s in KnowledgeStatus] if can_approve
                    else [KnowledgeStatus.draft.value])
        c[0].selectbox("Status", statuses, index=statuses.index(status.value)
                       if status.value in statuses else 0, key=status_key,
                       disabled=not can_write, label_visibility="collapsed")
        c[1].button("Save", key=f"ksave_{entry.id}", disabled=not can_write,
                    on_click=rv.on_save_knowledge,
                    args=(entry.id, entry.version, text_key, status_key))
        if status is KnowledgeStatus.draft:
            c[2].button("Approve", key=f"kapprove_{entry.id}", type="primary",
                        disabled=not can_approve, on_click=rv.on_save_knowledge,
                        args=(entry.id, entry.version, text_key, None))


def _add_form(category: str) -> None:
    with st.expander("Add a subclass entry"), st.form("add_knowledge_form"):
        st.text_input("Subclass", key="knew_subclass",
                      placeholder="severity:severe · region:apical · type:lobar")
        st.text_area("Explanation", key="knew_explanation")
        st.form_submit_button("Add entry", key="knew_add", on_click=rv.on_add_knowledge,
                              args=(category, "knew_subclass", "knew_explanation"))


def main() -> None:
    st.title("Knowledge (IKI)")
    state.show_flash()
    with state.db_session() as session:
        actor = rv.require_actor(what="edit knowledge")
        categories = list(vocab.category_ids())
        category = st.selectbox("Category", categories, key=state.KEY_K_CATEGORY,
                                format_func=lambda c: f"{vocab.load_vocabulary()[c].label} ({c})")
        entries = queries.list_knowledge(session=session, category=category)
        synced = queries.last_synced_explanations(session=session)
        names = {r.id: r.name for r in queries.list_reviewers(session=session)}
    if not entries:
        st.info("No IKI entry for this category yet: run `python -m pipeline.knowledge sync`.")
    for entry in entries:
        _entry(entry, synced, names, actor)
    if actor is not None:
        _add_form(category)


main()
