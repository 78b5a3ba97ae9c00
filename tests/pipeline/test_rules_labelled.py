"""The rule extractor against our labelled sentences (tests/data/labelled_sentences.jsonl).

Each line: {"text", "tags", "findings": [{"category", "presence", "severity", "side"}]}, the
complete set of findings a reader codes from that sentence (nodule and mass imply lung_lesion,
pleural thickening implies pleural_other, as in the vocabulary), one per (category, side)
instance. Scored presence-aware: a (category, presence) counts as correct only when category AND
presence match; severity and side are compared per instance, each gold instance against the
extracted one of its side.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from pipeline.extract.rules.engine import RuleExtractor

DATA = Path(__file__).resolve().parents[1] / "data" / "labelled_sentences.jsonl"
MIN_F1 = 0.92  # acceptance target of the issue


@pytest.fixture(scope="module")
def labelled() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def scored(labelled):
    rules = RuleExtractor()
    tp = fp = fn = 0
    attrs = Counter()
    for item in labelled:
        pred, gold = defaultdict(list), defaultdict(list)
        for f in rules.extract(item["text"]):
            pred[f.category, f.presence.value].append(
                (f.severity.value if f.severity else None, f.side.value if f.side else None))
        for g in item["findings"]:
            gold[g["category"], g["presence"]].append((g["severity"], g["side"]))
        tp += len(pred.keys() & gold.keys())
        fp += len(pred.keys() - gold.keys())
        fn += len(gold.keys() - pred.keys())
        for key in pred.keys() & gold.keys():
            for severity, side in gold[key]:  # each gold instance against the same-side one
                got = next((p for p in pred[key] if p[1] == side), pred[key][0])
                attrs["n"] += 1
                attrs["severity"] += got[0] == severity
                attrs["side"] += got[1] == side
    return tp, fp, fn, attrs


def test_the_set_is_large_and_covers_each_phenomenon(labelled):
    assert len(labelled) >= 200
    tags = Counter(t for item in labelled for t in item["tags"])
    for tag, minimum in {"neg": 40, "unc": 40, "sev": 30, "side": 50, "pseudo": 5, "tricky": 2}.items():
        assert tags[tag] >= minimum, (tag, tags[tag])
    presences = Counter(g["presence"] for item in labelled for g in item["findings"])
    assert min(presences.values()) >= 50


def test_presence_aware_micro_f1(scored):
    tp, fp, fn, _ = scored
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= MIN_F1, f"micro-F1 {f1:.3f} (tp {tp}, fp {fp}, fn {fn})"


def test_severity_and_side_of_matched_findings(scored):
    *_, attrs = scored
    assert attrs["severity"] / attrs["n"] >= 0.95
    assert attrs["side"] / attrs["n"] >= 0.85  # side of a hedged alternative is often implicit
