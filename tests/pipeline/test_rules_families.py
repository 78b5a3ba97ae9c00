"""The rule extractor on the failure families of reports in styles it was not tuned on (issue 11).

One test group per family: inline section headers, current grade after change language,
spelling, abbreviations, structured templates, cardiac size wording, hedges. The labelled
sentences of each family (tests/data/labelled_sentences.jsonl, tags "f1_..." to "f7_...") are
scored in test_rules_labelled.py.
"""

from __future__ import annotations

import pytest

from pipeline.extract.rules.engine import RuleExtractor


@pytest.fixture(scope="module")
def rules() -> RuleExtractor:
    return RuleExtractor()


def found(rules: RuleExtractor, text: str) -> dict[str, tuple]:
    """category -> (presence, severity, side), for texts with one instance per category."""
    out = {}
    for f in rules.extract(text):
        assert f.category not in out, f"two {f.category} instances in {text!r}"
        out[f.category] = (f.presence.value, f.severity and f.severity.value,
                           f.side and f.side.value)
    return out


# --- 1. inline section headers -------------------------------------------------------------

INLINE = ("CLINICAL HISTORY: Cough, evaluate for infiltrate. FINDINGS: Left basilar opacity. "
          "Small left effusion. IMPRESSION: Left base opacity, atelectasis or pneumonia.")


def test_inline_headers_end_the_history_and_the_findings_are_read(rules):
    got = found(rules, INLINE)
    assert got["pleural_effusion"] == ("present", "mild", "left")
    assert got["lung_opacity"][0] == "present"
    by_cat = {f.category: f.evidence.text for f in rules.extract(INLINE)}
    assert by_cat["pleural_effusion"] == "Small left effusion."
    assert by_cat["lung_opacity"] == "Left basilar opacity."  # the header is not evidence


@pytest.mark.parametrize("text", [
    "clinical history: r/o pneumonia. findings: small right effusion.",
    "History Cough, r/o pneumonia. FINDINGS Small right effusion.",
    "Indication - evaluate for pneumonia. Findings - Small right effusion.",
    "REASON FOR EXAM: ?pneumonia Findings: Small right effusion.",
    "HISTORY: rule out pneumonia\nLungs: Small right effusion.",
    "INDICATION: pneumonia?\n\nSmall right effusion.",
])
def test_what_a_history_asks_is_no_finding_but_what_follows_it_is(rules, text):
    assert found(rules, text) == {"pleural_effusion": ("present", "mild", "right")}


@pytest.mark.parametrize("text, category, presence", [
    ("Findings suggest early pneumonia.", "pneumonia", "uncertain"),
    ("Comparison is made with the prior study. Small left pneumothorax.", "pneumothorax",
     "present"),
    ("Prior CT shows a right upper lobe nodule.", "nodule", "present"),
    ("History of smoking. Emphysema.", "emphysema", "present"),
])
def test_ordinary_words_do_not_open_a_skipped_section(rules, text, category, presence):
    assert found(rules, text)[category][0] == presence


# --- 2. current grade after change language -------------------------------------------------

@pytest.mark.parametrize("text, category, expected", [
    ("The left effusion has grown and is now moderate.", "pleural_effusion",
     ("present", "moderate", "left")),
    ("The right effusion decreased from large to small.", "pleural_effusion",
     ("present", "mild", "right")),
    ("The heart has enlarged, now large.", "cardiomegaly", ("present", "severe", None)),
    ("Right effusion, previously moderate, is now trace.", "pleural_effusion",
     ("present", "mild", "right")),
    ("Worsening left effusion, now large.", "pleural_effusion", ("present", "severe", "left")),
    # a change word with no grade gives no severity; comparatives grade the change only
    ("The left effusion has increased in size.", "pleural_effusion", ("present", None, "left")),
    ("The left effusion is larger.", "pleural_effusion", ("present", None, "left")),
    ("Smaller right pneumothorax.", "pneumothorax", ("present", None, "right")),
    # a range keeps its upper end; "to" inside it is no change
    ("Small to moderate left effusion.", "pleural_effusion", ("present", "moderate", "left")),
])
def test_the_grade_a_finding_has_now(rules, text, category, expected):
    assert found(rules, text)[category] == expected


@pytest.mark.parametrize("text, category", [
    ("The edema has cleared.", "edema"),
    ("Interval resolution of the left effusion.", "pleural_effusion"),
    ("The left lower lobe consolidation is no longer visible.", "consolidation"),
    ("The pneumothorax has disappeared.", "pneumothorax"),
])
def test_resolution_is_absent(rules, text, category):
    assert found(rules, text)[category][0] == "absent"


@pytest.mark.parametrize("text, category, severity", [
    ("The right effusion has almost resolved, with minimal residual fluid.", "pleural_effusion",
     "mild"),
    ("Near complete resolution of the left effusion.", "pleural_effusion", "mild"),
    ("Partial resolution of the right lower lobe pneumonia.", "pneumonia", None),
    ("The pneumonia has not resolved.", "pneumonia", None),
])
def test_a_finding_not_fully_resolved_is_present(rules, text, category, severity):
    assert found(rules, text)[category][:2] == ("present", severity)
