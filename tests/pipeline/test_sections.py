"""The one section grammar (pipeline/sections.py), as the ingest and the rule extractor read it."""

from __future__ import annotations

import pytest

from pipeline.ingest.sources import parse_report
from pipeline.sections import find_headers, split_sections

INLINE = ("CLINICAL HISTORY: Cough, evaluate for infiltrate. FINDINGS: Left basilar opacity. "
          "Small left effusion. IMPRESSION: Left base opacity, atelectasis or pneumonia.")


def sections(text: str) -> list[tuple[str, str]]:
    return [(s.name, text[s.body_start:s.end].strip()) for s in split_sections(text)]


def test_inline_headers_mid_line():
    assert sections(INLINE) == [
        ("indication", "Cough, evaluate for infiltrate."),
        ("findings", "Left basilar opacity. Small left effusion."),
        ("impression", "Left base opacity, atelectasis or pneumonia.")]


@pytest.mark.parametrize("text, expected", [
    ("clinical history: r/o pneumonia. findings: small right effusion.",
     [("indication", "r/o pneumonia."), ("findings", "small right effusion.")]),
    ("History Cough. FINDINGS Left basilar atelectasis.",
     [("indication", "Cough."), ("findings", "Left basilar atelectasis.")]),
    ("Indication - fever. Impression - no pneumonia.",
     [("indication", "fever."), ("impression", "no pneumonia.")]),
    ("Findings\nClear lungs.\nImpression\nNormal.",
     [("findings", "Clear lungs."), ("impression", "Normal.")]),
    ("Reason for exam: SOB FINDINGS: Clear.", [("indication", "SOB"), ("findings", "Clear.")]),
    ("COMPARISON 01/02/2020. Impression 1. Small effusion.",
     [("comparison", "01/02/2020."), ("impression", "1. Small effusion.")]),
])
def test_headers_in_any_case_with_or_without_a_colon(text, expected):
    assert sections(text) == expected


@pytest.mark.parametrize("text", [
    "Findings suggest early pneumonia.",
    "Comparison is made with the prior study.",
    "The findings: a small effusion.",  # not at a sentence start
    "History of smoking. Prior CT shows a nodule.",
    "FINDINGS SUGGEST PNEUMONIA. HISTORY OF COPD.",  # an all-caps report's prose
    "Small effusion, the history is unclear.",
    "No change since the examination of 2019.",
])
def test_ordinary_words_are_not_headers(text):
    assert find_headers(text) == []


def test_a_context_section_ends_at_a_blank_line_or_a_field_label():
    text = "INDICATION: SOB\n\nMild cardiomegaly."
    assert sections(text) == [("indication", "SOB")]
    text = "HISTORY: pneumonia\nLungs: Left basilar opacity."
    assert sections(text) == [("indication", "pneumonia")]
    text = "HISTORY:\n\nCough, r/o pneumonia.\n\nSmall effusion."  # the body starts after the gap
    assert sections(text) == [("indication", "Cough, r/o pneumonia.")]
    # an image section keeps its template fields and paragraphs
    text = "FINDINGS:\nLungs: Clear.\n\nHeart: Normal.\nIMPRESSION: Normal."
    assert sections(text)[0] == ("findings", "Lungs: Clear.\n\nHeart: Normal.")


def test_ingest_stores_the_sections_of_the_same_grammar():
    r = parse_report(INLINE)
    assert r.text == INLINE
    assert r.indication == "Cough, evaluate for infiltrate."
    assert r.findings == "Left basilar opacity. Small left effusion."
    assert r.impression == "Left base opacity, atelectasis or pneumonia."
    r = parse_report("Conclusion: No acute disease. Findings suggest nothing more.")
    assert (r.impression, r.findings) == ("No acute disease. Findings suggest nothing more.", None)


def test_with_no_image_header_the_last_context_section_is_one_sentence():
    text = "PORTABLE AP CHEST. COMPARISON: Yesterday. ETT tip above the carina. No PTX."
    assert sections(text) == [("comparison", "Yesterday.")]
    text = "COMPARISON: Yesterday. ETT tip above the carina. FINDINGS: No PTX."
    assert sections(text)[0] == ("comparison", "Yesterday. ETT tip above the carina.")


def test_field_labels_are_no_headers():
    from pipeline.sections import field_labels

    text = "FINDINGS: Pleural effusion: Small left.\nDevices: None.\nIMPRESSION: Effusion."
    labels = [text[s:e] for s, e in field_labels(text, find_headers(text))]
    assert labels == ["Pleural effusion:", "Devices:"]
    text = "Findings - Heart: normal."  # a dash header, then a label's colon
    assert field_labels(text, find_headers(text))
    assert field_labels("FINDINGS: Clear.", find_headers("FINDINGS: Clear.")) == []
