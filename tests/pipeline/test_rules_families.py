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


def test_without_a_findings_header_the_text_after_a_context_sentence_is_read(rules):
    text = ("PORTABLE AP CHEST, 0500 HRS. COMPARISON: Yesterday. ETT tip 3 cm above carina. "
            "Small b/l effusions. No PTX.")
    got = found(rules, text)
    assert got["pleural_effusion"] == ("present", "mild", "bilateral")
    assert got["pneumothorax"][0] == "absent" and got["support_devices"][0] == "present"
    # with a findings header, what stands between stays part of the comparison
    got = found(rules, "COMPARISON: 2019. Right effusion then. FINDINGS: No effusion.")
    assert got == {"pleural_effusion": ("absent", None, None)}


def test_a_history_of_is_the_patients_past(rules):
    assert "pneumonia" not in found(rules, "History of pneumonia. Clear lungs.")
    got = found(rules, "Right lower lobe opacity in a patient with history of pneumonia.")
    assert got["pneumonia"][0] == "uncertain"  # an opacity it may explain stands beside it


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
    ("Interval clearance of the left basal consolidation.", "consolidation"),
])
def test_resolution_is_absent(rules, text, category):
    assert found(rules, text)[category][0] == "absent"


@pytest.mark.parametrize("text, category, severity", [
    ("The right effusion has almost resolved, with minimal residual fluid.", "pleural_effusion",
     "mild"),
    ("Near complete resolution of the left effusion.", "pleural_effusion", "mild"),
    ("Partial resolution of the right lower lobe pneumonia.", "pneumonia", None),
    ("The right lower lobe opacity has largely cleared.", "lung_opacity", "mild"),
    ("The pneumonia has not resolved.", "pneumonia", None),
])
def test_a_finding_not_fully_resolved_is_present(rules, text, category, severity):
    assert found(rules, text)[category][:2] == ("present", severity)


# --- 3. spelling: British forms and typos ---------------------------------------------------

@pytest.mark.parametrize("text, category, presence", [
    ("Mild interstitial oedema.", "edema", "present"),
    ("The oedema has cleared.", "edema", "absent"),
    ("Small right haemothorax.", "pleural_effusion", "present"),
    ("Oesophageal temperature probe in place.", "support_devices", "present"),
    ("Appearances favour atelectasis.", "atelectasis", "uncertain"),
    ("Atelectasis is favoured.", "atelectasis", "uncertain"),
    ("The nasogastric tube is not visualised.", "support_devices", "absent"),
    ("A 2 centimetre nodule in the right upper lobe.", "nodule", "present"),
])
def test_british_spelling(rules, text, category, presence):
    assert found(rules, text)[category][0] == presence


def test_spelling_variants_cover_every_word_but_leave_hemi_alone():
    from pipeline.vocab import spelling_variants

    assert spelling_variants("pulmonary edema") == {"pulmonary edema", "pulmonary oedema"}
    assert spelling_variants("hemothorax") == {"hemothorax", "haemothorax"}
    assert spelling_variants("hemidiaphragm") == {"hemidiaphragm"}
    assert spelling_variants("size") == {"size"}
    assert "not visualised" in spelling_variants("not visualized")


@pytest.mark.parametrize("text, category", [
    ("Bibasilar atelectsis.", "atelectasis"),
    ("Small right pnemothorax.", "pneumothorax"),
    ("Cardiomegly.", "cardiomegaly"),
    ("Right lower lobe consolidiation.", "consolidation"),
    ("Small left efussion.", "pleural_effusion"),  # a doubling slip: two edits, one mistake
    ("Small left effusin.", "pleural_effusion"),
    ("Right lower lobe PNUEMONIA.", "pneumonia"),  # a swap of neighbours is one edit
])
def test_typos_of_vocabulary_words(rules, text, category):
    assert found(rules, text)[category][0] == "present"


@pytest.mark.parametrize("text", [
    "Normal perfusion of both lungs.",
    "Emphasis on the lung apices.",
    "Diffusion of contrast into the soft tissues.",
    "Infusion port in the right chest wall is not a pacer.",  # "port" is not in the lexicon
    "The lungs are hypoinflated.",  # a real word (spelling.yaml known_words), not hyper-
    "Plate-like atelect.",  # under six letters: never corrected
])
def test_real_words_do_not_become_findings(rules, text):
    cats = set(found(rules, text))
    assert not cats & {"pleural_effusion", "emphysema", "lung_lesion", "atelectasis"}, cats


def test_the_edit_distance_is_bounded(rules):
    fix = rules._typos.fix
    assert fix("efussion") == "effusion"
    assert fix("cardiomgly") is None  # two real edits
    assert fix("hyperinflatd") == "hyperinflated"
    assert fix("tffusion") is None  # the first letter must agree


def test_evidence_quotes_the_report_as_written_after_a_correction(rules):
    text = "FINDINGS: Small left efussion.  Bibasilar atelectsis. No pnemothorax."
    by_cat = {f.category: f.evidence for f in rules.extract(text)}
    assert by_cat["pleural_effusion"].text == "Small left efussion."
    assert by_cat["atelectasis"].text == "Bibasilar atelectsis."
    assert by_cat["pneumothorax"].text == "No pnemothorax."
    for ev in by_cat.values():
        assert text[ev.start:ev.end] == ev.text


def test_typo_correction_can_be_turned_off():
    plain = RuleExtractor(correct_typos=False)
    assert plain.extract("Cardiomegly.") == []
    assert plain.version.endswith("-nt")


# --- 4. abbreviations and shorthand for side, site and devices ------------------------------

@pytest.mark.parametrize("text, category, side", [
    ("B/l pleural effusions.", "pleural_effusion", "bilateral"),
    ("Bilat effusions.", "pleural_effusion", "bilateral"),
    ("Pleural effusions, L>R.", "pleural_effusion", "bilateral"),
    ("Basilar atelectasis R > L.", "atelectasis", "bilateral"),
    ("R pleural effusion.", "pleural_effusion", "right"),
    ("Small lt pneumothorax.", "pneumothorax", "left"),
    ("L PICC tip in the SVC.", "support_devices", "left"),
    ("R IJ line in place.", "support_devices", "right"),
    ("Small effusion (R).", "pleural_effusion", "right"),
    ("Atelectasis, left lower lobe.", "atelectasis", "left"),  # a comma phrase of sides only
    ("RLZ consolidation.", "consolidation", "right"),  # British zone shorthand
    ("LLL collapse.", "atelectasis", "left"),
])
def test_side_shorthand(rules, text, category, side):
    assert found(rules, text)[category][2] == side


@pytest.mark.parametrize("text, side, region", [
    ("RUL opacity.", "right", "upper"), ("RML opacity.", "right", "middle"),
    ("RLL opacity.", "right", "lower"), ("LUL opacity.", "left", "upper"),
    ("LLL opacity.", "left", "lower"), ("Lingula opacity.", "left", "lingular"),
])
def test_lobe_abbreviations_give_side_and_zone(rules, text, side, region):
    [f] = rules.extract(text)
    assert (f.side.value, f.location.region) == (side, region)


def test_single_letters_are_sides_only_before_a_word(rules):
    assert found(rules, "Opacity, r/o pneumonia.")["pneumonia"] == ("uncertain", None, None)
    assert found(rules, "L1 compression fracture.")["fracture"][2] is None
    assert found(rules, "No effusion, left lung clear.")["pleural_effusion"] == (
        "absent", None, None)  # a comma phrase with other words describes something else


@pytest.mark.parametrize("text, category, presence", [
    ("No PTX.", "pneumothorax", "absent"),
    ("RLL PNA.", "pneumonia", "present"),
    ("ETT 4 cm above the carina.", "support_devices", "present"),
    ("NGT tip in the stomach.", "support_devices", "present"),
    ("OGT coiled in the stomach.", "support_devices", "present"),
    ("R IJ CVC tip at the cavoatrial junction.", "support_devices", "present"),
    ("Bibasilar atx.", "atelectasis", "present"),
    ("Small L eff.", "pleural_effusion", "present"),
])
def test_finding_and_device_abbreviations(rules, text, category, presence):
    assert found(rules, text)[category][0] == presence


def test_chf_names_edema_only_with_edema_wording_beside_it(rules):
    assert "edema" not in found(rules, "History of CHF, no acute findings.")
    assert "edema" not in found(rules, "Findings compatible with CHF.")
    assert found(rules, "CHF with pulmonary vascular congestion.")["edema"][0] == "uncertain"
    assert found(rules, "CHF with mild interstitial edema.")["edema"] == ("present", "mild", None)


# --- 5. structured templates ----------------------------------------------------------------

@pytest.mark.parametrize("text, category, expected", [
    ("Pleural effusion: Moderate right.", "pleural_effusion", ("present", "moderate", "right")),
    ("Cardiac silhouette: Moderately enlarged.", "cardiomegaly", ("present", "moderate", None)),
    ("Devices: None.", "support_devices", ("absent", None, None)),
    ("Pneumothorax: No.", "pneumothorax", ("absent", None, None)),
    ("Pneumothorax: Absent.", "pneumothorax", ("absent", None, None)),
    ("Consolidation: Possible, left lower lobe.", "consolidation", ("uncertain", None, "left")),
    ("Edema: Mild interstitial.", "edema", ("present", "mild", None)),
    ("Heart size: Normal.", "cardiomegaly", ("absent", None, None)),
    ("Heart: not enlarged.", "cardiomegaly", ("absent", None, None)),
    ("Effusion: nil.", "pleural_effusion", ("absent", None, None)),  # British "nil"
    ("Pleural effusion: Present, moderate, right-sided.", "pleural_effusion",
     ("present", "moderate", "right")),
])
def test_a_template_answer_grades_and_places_its_label(rules, text, category, expected):
    assert found(rules, text)[category] == expected


def test_a_template_report_line_by_line_and_inline(rules):
    text = ("FINDINGS:\nLungs: Clear.\nPleural effusion: Small left.\nPneumothorax: None.\n"
            "Heart size: Normal.\nDevices: Right PICC, tip in the SVC.")
    assert found(rules, text) == {
        "pleural_effusion": ("present", "mild", "left"),
        "pneumothorax": ("absent", None, None), "cardiomegaly": ("absent", None, None),
        "support_devices": ("present", None, "right")}
    by_cat = {f.category: f.evidence.text for f in rules.extract(text)}
    assert by_cat["pleural_effusion"] == "Pleural effusion: Small left."  # the label is quoted
    assert found(rules, "Heart: normal. Pneumothorax: none. Effusion: small right.") == {
        "cardiomegaly": ("absent", None, None), "pneumothorax": ("absent", None, None),
        "pleural_effusion": ("present", "mild", "right")}


def test_a_label_without_a_mention_leaves_its_answer_alone(rules):
    assert found(rules, "Lungs: No consolidation. Small left effusion.") == {
        "consolidation": ("absent", None, None), "pleural_effusion": ("present", "mild", "left")}
    assert found(rules, "Seen at 10:30: small right pneumothorax.")["pneumothorax"] == (
        "present", "mild", "right")


# --- 6. cardiac size wording ----------------------------------------------------------------

@pytest.mark.parametrize("text, presence", [
    ("CTR is increased.", "present"),
    ("The cardiothoracic ratio is above 0.5.", "present"),
    ("CTR 0.62.", "present"),
    ("CTR > 50%.", "present"),
    ("Cardiothoracic ratio 0.45.", "absent"),
    ("CTR is normal.", "absent"),
    ("The heart is enlarged.", "present"),
    ("The heart has enlarged since the prior study.", "present"),
    ("Heart size at the upper limit of normal.", "absent"),
    ("Heart size is upper normal.", "absent"),
    ("Heart size is borderline normal.", "absent"),
    ("Borderline cardiomegaly.", "present"),
])
def test_heart_size_wording(rules, text, presence):
    assert found(rules, text)["cardiomegaly"][0] == presence


@pytest.mark.parametrize("text", [
    "Heart and mediastinum unremarkable.",
    "The heart and mediastinum are within normal limits.",
    "Normal heart and mediastinum.",
    "Heart, mediastinum and hila are normal.",
])
def test_heart_and_mediastinum_normal_rules_out_both(rules, text):
    got = found(rules, text)
    assert got["cardiomegaly"][0] == got["enlarged_cardiomediastinum"][0] == "absent"


# --- 7. hedges and pseudo-negations ---------------------------------------------------------

@pytest.mark.parametrize("text, category, presence", [
    ("Appearances favour atelectasis.", "atelectasis", "uncertain"),
    ("?developing consolidation.", "consolidation", "uncertain"),
    ("? small right pneumothorax", "pneumothorax", "uncertain"),
    ("Pneumonia?", "pneumonia", "uncertain"),
    ("Probably a calcified granuloma.", "granuloma", "uncertain"),
    ("The opacity may reflect positioning; however, a mass cannot be excluded.", "mass",
     "uncertain"),
    ("A pneumothorax cannot be confidently ruled out.", "pneumothorax", "uncertain"),
    ("A small effusion could not be excluded.", "pleural_effusion", "uncertain"),
    ("Cannot entirely exclude a small effusion.", "pleural_effusion", "uncertain"),
    ("Unable to exclude a pneumothorax.", "pneumothorax", "uncertain"),
    ("Appearances may well represent atelectasis.", "atelectasis", "uncertain"),
    ("There is a not inconsiderable left pleural effusion.", "pleural_effusion", "present"),
    ("There is nothing to indicate a pneumothorax.", "pneumothorax", "absent"),
    ("Nothing to suggest pulmonary edema.", "edema", "absent"),
])
def test_hedges_and_pseudo_negations(rules, text, category, presence):
    assert found(rules, text)[category][0] == presence


def test_a_question_mark_before_a_word_does_not_end_the_sentence(rules):
    [f] = rules.extract("Lungs clear. ? consolidation at the left base.")
    assert f.evidence.text == "? consolidation at the left base."


@pytest.mark.parametrize("text", [
    "The lungs are clear. Correlate clinically for infection.",
    "Recommend CT to evaluate for a nodule.",
    "Left PICC in place. Correlate clinically for infection.",  # a device explains nothing
    "Follow-up radiograph recommended to exclude a pneumothorax.",
])
def test_a_recommendation_alone_is_no_finding(rules, text):
    cats = set(found(rules, text))
    assert not cats & {"pneumonia", "nodule", "lung_lesion", "pneumothorax"}, cats


def test_a_recommendation_beside_a_finding_it_may_explain_is_uncertain(rules):
    got = found(rules, "Right basilar opacity, correlate clinically for pneumonia.")
    assert got["pneumonia"] == ("uncertain", None, "right")
    got = found(rules, "Left lower lobe opacity. Correlate clinically for pneumonia.")
    assert got["pneumonia"][0] == "uncertain"
    got = found(rules, "Consider follow-up CT to evaluate a possible nodule.")
    assert got["nodule"][0] == "uncertain"  # a hedge of its own


@pytest.mark.parametrize("text, severity", [
    ("Mild-moderate cardiomegaly.", "moderate"), ("Small/moderate left effusion.", "moderate"),
    ("Moderate-severe edema.", "severe"),
])
def test_hyphenated_and_slashed_ranges_take_their_upper_end(rules, text, severity):
    assert next(iter(found(rules, text).values()))[1] == severity
