"""Per-category agreement: findings stay one per instance, the CheXpert fold is made here only."""

from __future__ import annotations

from types import SimpleNamespace

from db import queries
from db.engine import session_scope
from db.models import Presence
from pipeline import agreement
from tests.factories import make_reviewable_report, make_reviewer


def answer(report_id, category, presence, side=None, extractor="rules", version="rules-1"):
    return SimpleNamespace(report_id=report_id, extractor=extractor, extractor_version=version,
                           category=category, presence=Presence(presence), severity=None,
                           side=side, region=None)


def by_cat(rows):
    return {r["category"]: r for r in rows}


def test_instances_fold_to_one_answer_per_category_before_they_are_compared():
    # The extractor said: right effusion present, left absent; review kept both. Per category
    # that is one "present" on each side: agreement, not a present/absent clash.
    said = [answer(1, "pleural_effusion", "present", "right"),
            answer(1, "pleural_effusion", "absent", "left"),
            answer(1, "pneumothorax", "absent"), answer(2, "pneumothorax", "present")]
    settled = [answer(1, "pleural_effusion", "present", "right", "human", "human"),
               answer(1, "pleural_effusion", "absent", "left", "human", "human"),
               answer(2, "pneumothorax", "uncertain", None, "human", "human"),
               answer(2, "edema", "present", None, "human", "human")]
    rows = by_cat(agreement.category_agreement(said, settled))
    assert rows["pleural_effusion"]["agreement"] == 1.0
    ptx = rows["pneumothorax"]  # report 1: absent vs not named; report 2: present vs uncertain
    assert (ptx["reports"], ptx["agree"], ptx["extractor_only"], ptx["other_presence"]) == (
        2, 0, 1, 1)
    assert rows["edema"]["review_only"] == 1 and rows["edema"]["agreement"] == 0.0


def test_rejected_instance_makes_the_category_extractor_only():
    said = [answer(1, "cardiomegaly", "present")]
    rows = by_cat(agreement.category_agreement(said, []))
    assert rows["cardiomegaly"]["extractor_only"] == 1


def test_the_store_gives_first_proposals_and_settled_answers_of_reviewed_reports(db_url):
    with session_scope(db_url) as s:
        report, (eff, ptx, heart) = make_reviewable_report(s)
        other, _ = make_reviewable_report(s, key="other")  # never reviewed: left out
        a = make_reviewer(s, name="Dr A")
    store = SimpleNamespace(url=db_url)
    with session_scope(store.url) as s:
        queries.decide_finding(eff.id, "accept", version=eff.version, reviewer=a, session=s)
        queries.decide_finding(ptx.id, "edit", version=ptx.version, reviewer=a,
                               changes={"presence": "uncertain"}, session=s)
        queries.decide_finding(heart.id, "reject", version=heart.version, reviewer=a, session=s)
    with session_scope(store.url) as s:
        said, settled = queries.list_category_answers(session=s)
    assert {f.report_id for f in said} == {report.id}
    assert {(f.category, f.presence) for f in said} == {
        ("pleural_effusion", Presence.present), ("pneumothorax", Presence.absent),
        ("cardiomegaly", Presence.present)}  # the edit's before, not its after
    assert {(f.category, f.presence) for f in settled} == {
        ("pleural_effusion", Presence.present), ("pneumothorax", Presence.uncertain)}
    rows = by_cat(agreement.category_agreement(said, settled))
    assert rows["pleural_effusion"]["agreement"] == 1.0
    assert rows["pneumothorax"]["other_presence"] == 1
    assert rows["cardiomegaly"]["extractor_only"] == 1
