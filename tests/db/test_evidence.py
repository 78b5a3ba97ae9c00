"""The verbatim-evidence rule (db.evidence): locate a quote whitespace-insensitively, store and
check the exact report slice; and every writer holds to it."""

from __future__ import annotations

import pytest

from db import queries
from db.engine import session_scope
from db.evidence import check_span, locate_quote
from tests.factories import REVIEW_REPORT, make_reviewable_report, make_reviewer

TEXT = "FINDINGS: Small right\npleural   effusion. No pneumothorax.\nIMPRESSION: Effusion."


def test_an_exact_quote_is_found_at_its_first_occurrence():
    assert locate_quote("No effusion. Stable. No effusion.", "No effusion.") == (0, 12)
    assert locate_quote(TEXT, "  No pneumothorax.\n") == (42, 58)  # outer whitespace ignored


@pytest.mark.parametrize("quote", ["Small right pleural effusion.", "Small right\npleural effusion.",
                                   "Small  right pleural\teffusion."])
def test_a_rewrapped_quote_is_found_and_the_stored_span_is_the_report_slice(quote):
    start, end = locate_quote(TEXT, quote)
    assert TEXT[start:end] == "Small right\npleural   effusion."
    assert check_span(TEXT, start, end, TEXT[start:end])
    assert not check_span(TEXT, start, end, quote)  # the span check itself stays exact


@pytest.mark.parametrize("quote", ["", "   ", "small right pleural effusion.",
                                   "Smallright pleural effusion.", "Small right pleural-effusion.",
                                   "Large right pleural effusion."])
def test_anything_but_the_same_words_is_not_found(quote):
    assert locate_quote(TEXT, quote) is None


@pytest.mark.parametrize(("start", "end", "quote"), [
    (42, 58, "No pneumothorax"), (41, 57, "No pneumothorax."), (42, 42, ""), (-1, 5, "x"),
    (0, 999, TEXT), (None, 58, "No pneumothorax."), (42, 58, None)])
def test_a_span_that_is_not_the_exact_slice_fails(start, end, quote):
    assert check_span(TEXT, 42, 58, "No pneumothorax.")
    assert not check_span(TEXT, start, end, quote)


def test_a_review_add_with_a_rewrapped_quote_stores_the_exact_slice(db_url):
    pasted = "Mild cardiomegaly. IMPRESSION: Left effusion."  # the newline became a space
    with session_scope(db_url) as s:
        report, _ = make_reviewable_report(s)
        result = queries.add_finding(report.id, {"category": "edema", "presence": "present",
                                                 "evidence_text": pasted},
                                     reviewer=make_reviewer(s), session=s)
        assert result.ok, result.message
        got = queries.get_review_report(session=s, report_id=report.id).findings[-1]
    assert got.evidence_text == "Mild cardiomegaly.\nIMPRESSION: Left effusion."
    assert REVIEW_REPORT[got.evidence_start:got.evidence_end] == got.evidence_text


def test_a_review_edit_keeps_a_given_verbatim_span_and_locates_a_bare_quote(db_url):
    report_text = "FINDINGS: No effusion.\nIMPRESSION: No effusion."
    quotes = (("pleural_effusion", "absent", "No effusion."),)
    with session_scope(db_url) as s:
        report, [f] = make_reviewable_report(s, report=report_text, quotes=quotes)
        reviewer = make_reviewer(s)
        second = report_text.rindex("No effusion.")
        kept = queries.decide_finding(f.id, "edit", version=1, reviewer=reviewer, session=s,
                                      changes={"evidence_start": second,
                                               "evidence_end": second + 12,
                                               "evidence_text": "No effusion."})
        assert kept.ok and (f.evidence_start, f.evidence_end) == (second, second + 12)
        refused = queries.decide_finding(f.id, "edit", version=2, reviewer=reviewer, session=s,
                                         changes={"evidence_text": "No  edema."})
        assert not refused.ok and "not a verbatim part of the report" in refused.message
        located = queries.decide_finding(f.id, "edit", version=2, reviewer=reviewer, session=s,
                                         changes={"evidence_text": "effusion.\nIMPRESSION:"})
        assert located.ok
        assert (f.evidence_start, f.evidence_text) == (13, "effusion.\nIMPRESSION:")


def test_extracted_findings_must_be_verbatim_at_the_write(db_url):
    with session_scope(db_url) as s:
        report, _ = make_reviewable_report(s, quotes=())
        bad = {"category": "edema", "presence": "present", "evidence_start": 0,
               "evidence_end": 5, "evidence_text": "Edema"}
        with pytest.raises(ValueError, match="edema"):
            queries.replace_proposed_findings(report.id, "rules", "v1", [bad], session=s)
