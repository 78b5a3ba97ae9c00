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
