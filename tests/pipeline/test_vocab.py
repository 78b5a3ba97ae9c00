"""The packaged knowledge: every category has phrases and an IKI explanation; every file loads."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from db.models import Severity
from pipeline import vocab
from pipeline.extract.rules.match import is_pattern, mention_matcher, normalise

ARCHITECTURE_IDS = {
    "atelectasis", "cardiomegaly", "consolidation", "edema", "enlarged_cardiomediastinum",
    "fracture", "lung_lesion", "lung_opacity", "pleural_effusion", "pleural_other", "pneumonia",
    "pneumothorax", "support_devices", "nodule", "mass", "emphysema", "fibrosis",
    "pleural_thickening", "hernia", "granuloma"}


def test_vocabulary_has_every_architecture_category_with_label_and_phrases():
    cats = vocab.load_vocabulary()
    assert ARCHITECTURE_IDS <= set(cats)
    for cat in cats.values():
        assert cat.label.strip(), cat.id
        assert cat.phrases, f"{cat.id} has no mention phrases"
        assert cat.comment.strip(), f"{cat.id} has no comment"


def test_every_category_has_an_iki_explanation():
    iki = vocab.load_iki()
    for cid in vocab.load_vocabulary():
        assert len(iki.get(cid, {}).get("", "")) > 80, f"{cid}: missing or too short explanation"
    assert set(iki) <= set(vocab.load_vocabulary())


def test_iki_subclasses_are_well_formed_and_cover_the_required_contrasts():
    iki = vocab.load_iki()
    regions = set(vocab.load_locations().regions)
    for cid, subs in iki.items():
        for key in subs:
            if not key:
                continue
            kind, _, value = key.partition(":")
            assert kind in {"severity", "region", "type"} and value, f"{cid}: bad key {key!r}"
            if kind == "severity":
                Severity(value)
            if kind == "region":
                assert value in regions, f"{cid}: unknown region {value!r}"
    assert {"severity:mild", "severity:severe"} <= set(iki["pleural_effusion"])
    assert {"region:apical", "region:basilar"} <= set(iki["pneumothorax"])
    assert {"type:lobar", "type:plate-like"} <= set(iki["atelectasis"])


def test_the_rule_matcher_finds_every_phrase_whole_as_its_category():
    """Through the rules engine's own compiled matcher (not a re-built regex): each literal
    phrase of the vocabulary, in running text, is one mention of its category and kind."""
    matcher = mention_matcher()
    missed = []
    for cat in vocab.load_vocabulary().values():
        for kind, items in (("strong", cat.phrases), ("weak", cat.weak), ("absent", cat.absent),
                            ("ignore", cat.ignore)):
            for item in (i for i in items if not is_pattern(i)):
                text = f"seen: {item.lower()}."
                hit = matcher.regex.search(text)
                whole = hit is not None and hit.span() == (6, 6 + len(item))
                if not whole or (cat.id, kind) not in matcher.by_phrase[normalise(hit.group())]:
                    missed.append((cat.id, kind, item, hit and hit.group()))
    assert missed == []


def test_patterns_compile_without_capturing_groups():
    matcher = mention_matcher()
    assert matcher.patterns, "the vocabulary has regex patterns"
    for pattern, category, _ in matcher.patterns:
        assert pattern.groups == 0, f"{category}: capturing group in {pattern.pattern!r}"


def test_triggers_load_and_every_rule_is_commented():
    t = vocab.load_triggers()
    for name in ("neg_forward", "neg_backward", "unc_forward", "unc_backward",
                 "unc_bidirectional", "pseudo", "termination"):
        assert getattr(t, name), name
    assert "no" in t.neg_forward  # YAML would read a bare `no` as False
    text = resources.files("pipeline.resources").joinpath("triggers.yaml").read_text()
    rules = [line for line in text.splitlines() if re.match(r"\s+- ", line)]
    assert len(rules) > 100
    uncommented = [line for line in rules if "#" not in line]
    assert not uncommented, uncommented[:5]


def test_severity_lexicon_maps_the_architecture_words():
    sev = vocab.load_severity()
    for word, level in {"small": "mild", "trace": "mild", "minimal": "mild", "large": "severe",
                        "massive": "severe", "moderate": "moderate"}.items():
        assert sev[word] is Severity(level), word


def test_locations_give_sides_and_regions():
    loc = vocab.load_locations()
    assert {"upper", "middle", "lower", "apical", "basilar", "perihilar", "retrocardiac",
            "costophrenic", "hilar"} <= set(loc.regions)
    assert loc.terms["bibasilar"].side.value == "bilateral"
    assert loc.terms["bibasilar"].region == "basilar"
    assert loc.terms["left"].side.value == "left"


def test_unknown_keys_fail_loudly(monkeypatch):
    monkeypatch.setattr(vocab, "read_yaml", lambda name: {
        "categories": {"x": {"label": "X", "phrases": ["x"], "synonym": ["y"]}}})
    vocab.load_vocabulary.cache_clear()
    try:
        with pytest.raises(ValueError, match="unknown keys"):
            vocab.load_vocabulary()
    finally:
        monkeypatch.undo()
        vocab.load_vocabulary.cache_clear()
