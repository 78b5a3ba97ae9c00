"""The rule extractor on the cases the issue names, plus evidence, instances, folding and sections."""

from __future__ import annotations

import pytest

from pipeline.extract.findings import evidence_is_verbatim
from pipeline.extract.rules.engine import RuleExtractor
from pipeline.fold import fold_by_category


@pytest.fixture(scope="module")
def rules() -> RuleExtractor:
    return RuleExtractor()


def found(rules: RuleExtractor, text: str) -> dict[str, tuple]:
    """category -> (presence, severity, side) of every finding."""
    return {f.category: (f.presence.value, f.severity and f.severity.value, f.side and f.side.value)
            for f in rules.extract(text)}


@pytest.mark.parametrize("text, category, presence", [
    ("No pleural effusion or pneumothorax.", "pneumothorax", "absent"),
    ("No focal consolidation, pleural effusion or pneumothorax.", "pleural_effusion", "absent"),
    ("Mild cardiomegaly without pulmonary edema.", "edema", "absent"),
    ("The costophrenic angles are free of effusion.", "pleural_effusion", "absent"),
    ("The left lower lobe pneumonia has resolved.", "pneumonia", "absent"),
    ("Resolved right pneumothorax.", "pneumothorax", "absent"),
    ("Cannot exclude a small left effusion.", "pleural_effusion", "uncertain"),
    ("A small effusion cannot be excluded.", "pleural_effusion", "uncertain"),
    ("The opacity may represent atelectasis.", "atelectasis", "uncertain"),
    ("Atelectasis versus pneumonia at the right base.", "atelectasis", "uncertain"),
    ("Atelectasis versus pneumonia at the right base.", "pneumonia", "uncertain"),
    ("Likely bibasilar atelectasis.", "atelectasis", "uncertain"),
    ("Possible small right pneumothorax.", "pneumothorax", "uncertain"),
    ("No change in the small effusion.", "pleural_effusion", "present"),
    ("Evaluation limited; no large pneumothorax.", "pneumothorax", "absent"),
    ("No opacity to suggest pneumonia.", "pneumonia", "absent"),
    ("No pneumothorax, possible small right effusion.", "pleural_effusion", "uncertain"),
    ("No effusion, but there is a small pneumothorax.", "pneumothorax", "present"),
    ("Heart size is normal.", "cardiomegaly", "absent"),
    ("The heart is mildly enlarged.", "cardiomegaly", "present"),
    ("Hyperexpanded lungs.", "emphysema", "uncertain"),
    ("Subcutaneous emphysema in the right chest wall.", "emphysema", None),
])
def test_presence(rules, text, category, presence):
    assert found(rules, text).get(category, (None,))[0] == presence


def test_severity_and_side(rules):
    text = "Large left and small right pleural effusions. Mild bibasilar atelectasis."
    got = found(rules, text)
    assert got["atelectasis"] == ("present", "mild", "bilateral")
    # one instance per side, each with its own grade; the CheXpert fold merges them
    effusions = [f for f in rules.extract(text) if f.category == "pleural_effusion"]
    assert sorted((f.side.value, f.severity.value) for f in effusions) == [("left", "severe"),
                                                                          ("right", "mild")]
    folded = fold_by_category(effusions)["pleural_effusion"]
    assert (folded.severity.value, folded.side.value) == ("severe", "bilateral")
    assert found(rules, "Bilateral effusions, right greater than left.")["pleural_effusion"][2] \
        == "bilateral"
    zones = {(f.side.value, f.location.region) for f in rules.extract(
        "Right upper and left lower lobe nodules.") if f.category == "nodule"}
    assert zones == {("right", "upper"), ("left", "lower")}
    assert found(rules, "Small to moderate left pleural effusion.")["pleural_effusion"][1] == "moderate"
    got = found(rules, "Massive right pleural effusion with mediastinal shift to the left.")
    assert got["pleural_effusion"] == ("present", "severe", "right")


def test_absent_findings_carry_no_severity(rules):
    assert found(rules, "No large pleural effusion.")["pleural_effusion"] == ("absent", None, None)


def test_one_finding_per_category_and_side_instance():
    """MedFILIP's triplets: each (category, side) is its own finding; nothing is folded away."""
    findings = RuleExtractor().extract(
        "Moderate right pleural effusion. No left pleural effusion.")
    got = sorted((f.category, f.presence.value, f.severity and f.severity.value, f.side.value)
                 for f in findings)
    assert got == [("pleural_effusion", "absent", None, "left"),
                   ("pleural_effusion", "present", "moderate", "right")]
    assert {f.evidence.text for f in findings} == {"Moderate right pleural effusion.",
                                                   "No left pleural effusion."}


def test_mentions_of_one_instance_fold_and_unsided_ones_join_a_located_instance(rules):
    text = ("No pneumothorax. Possible small effusion. IMPRESSION: Small left pleural effusion. "
            "A tiny pneumothorax cannot be excluded.")
    findings = rules.extract(text)
    assert sorted(f.category for f in findings) == ["pleural_effusion", "pneumothorax"]
    got = found(rules, text)
    assert got["pleural_effusion"] == ("present", "mild", "left")
    assert got["pneumothorax"][0] == "uncertain"
    # "no new effusion" beside a located one adds no absent finding
    assert found(rules, "No new effusion. Stable small left effusion.") == {
        "pleural_effusion": ("present", "mild", "left")}
    # two located instances of one category stay two, each with its own grade
    sides = {f.side.value: f.severity.value for f in rules.extract(
        "Small right effusion. Large left effusion.")}
    assert sides == {"right": "mild", "left": "severe"}


def test_fold_by_category_is_the_chexpert_answer(rules):
    folded = fold_by_category(rules.extract(
        "Small right effusion. Large left effusion. No pneumothorax. Possible pneumothorax."))
    assert set(folded) == {"pleural_effusion", "pneumothorax"}
    eff = folded["pleural_effusion"]
    assert (eff.presence.value, eff.severity.value, eff.side.value) == ("present", "severe",
                                                                       "bilateral")
    assert folded["pneumothorax"].presence.value == "uncertain"
    right_only = fold_by_category(rules.extract(
        "Moderate right pleural effusion. No left pleural effusion."))["pleural_effusion"]
    assert (right_only.presence.value, right_only.side.value) == ("present", "right")


def test_evidence_is_the_verbatim_sentence(rules):
    text = "FINDINGS: Heart size normal.\n  No focal consolidation.  Small left effusion.\nIMPRESSION: Stable."
    for f in rules.extract(text):
        assert evidence_is_verbatim(text, f.evidence)
    by_cat = {f.category: f.evidence.text for f in rules.extract(text)}
    assert by_cat["consolidation"] == "No focal consolidation."
    assert by_cat["pleural_effusion"] == "Small left effusion."
    assert by_cat["cardiomegaly"] == "Heart size normal."


def test_indication_and_comparison_sections_are_ignored(rules):
    text = ("INDICATION: Rule out pneumonia. History of pneumothorax.\n"
            "COMPARISON: Chest radiograph with left effusion.\n"
            "FINDINGS: Mild cardiomegaly.\nIMPRESSION: No acute disease.")
    assert set(found(rules, text)) == {"cardiomegaly"}


def test_implied_categories(rules):
    got = found(rules, "A 6 mm nodule in the right upper lobe.")
    assert got["nodule"] == got["lung_lesion"] == ("present", None, "right")
    got = found(rules, "Stable calcified nodule in the left lower lobe.")
    assert {"nodule", "granuloma", "lung_lesion"} <= set(got)


def test_text_without_mentions_and_odd_inputs(rules):
    assert rules.extract("") == []
    assert rules.extract("No acute cardiopulmonary abnormality.") == []
    assert rules.extract("XXXX XXXX.\n\n\n???") == []


def test_extract_batch_yields_one_result_per_item_in_order(rules):
    results = list(rules.extract_batch([("a", "Small effusion."), ("b", "Normal."), ("c", "")]))
    assert [r.id for r in results] == ["a", "b", "c"]
    assert [len(r.findings) for r in results] == [1, 0, 0]
    assert all(r.error is None for r in results)


def test_extract_batch_turns_an_exception_into_an_error_result(rules, monkeypatch):
    monkeypatch.setattr(rules, "extract", lambda text: 1 / 0)
    (result,) = rules.extract_batch([("x", "text")])
    assert result.error.startswith("ZeroDivisionError") and result.findings == []


def test_version_names_the_engine_and_the_lexicons(rules):
    assert rules.name == "rules"
    assert rules.version.startswith("2-") and len(rules.version) <= 32
    f = rules.extract("Small effusion.")[0]
    assert f.extractor == f"rules/{rules.version}"


def test_lung_zone_words_do_not_locate_non_regional_findings():
    ex = RuleExtractor()
    [heart] = ex.extract("Heart size is at the upper limits of normal.")
    assert heart.category == "cardiomegaly" and heart.location.region is None
    [picc] = ex.extract("Right PICC terminates in the mid SVC.")
    assert picc.location.region is None and picc.location.side == "right"
    [pna] = ex.extract("Right upper lobe pneumonia.")
    assert pna.location.region == "upper"


@pytest.mark.parametrize("text, category, side, region", [
    ("Right lower lobe opacity, atelectasis versus pneumonia.", "pneumonia", "right", "lower"),
    ("Large right pleural effusion with compressive atelectasis.", "atelectasis", "right", None),
    ("Atelectasis and/or pneumonia in the left lower lobe.", "atelectasis", "left", "lower"),
    ("Small right-sided effusion with associated basilar atelectasis.", "atelectasis", "right",
     "basilar"),
])
def test_unlocated_finding_takes_the_location_of_its_anchor(text, category, side, region):
    found = {f.category: f for f in RuleExtractor().extract(text)}
    assert (found[category].location.side, found[category].location.region) == (side, region)


def test_location_is_not_inherited_by_negated_or_non_regional_findings():
    found = {f.category: f for f in RuleExtractor().extract(
        "Enlarged heart with small left effusion and no pneumothorax.")}
    assert found["cardiomegaly"].location.side is None
    assert found["pneumothorax"].location.side is None
    assert found["pleural_effusion"].location.side == "left"
