"""Benchmark of the rule extractor on Open-i (Indiana University chest X-ray reports).

Scores present-finding micro-F1 / P / R against the manual-MeSH gold labels of
``openi_gld_std14.csv`` (NegBio's ChestX-ray14 mapping) on the 771-id evaluation split and on the
tuning split (every other labelled report), and the speed in reports/s on one core; prints the
ratios to the acceptance targets (F1 0.90, 2,000 reports/s) and to the medspaCy ConText baseline
(F1 0.73, ~100 reports/s, measured on this machine).

Also: what the typo correction adds (the same run with it off: findings gained and lost, true
and false by the gold labels), and the presence-aware micro-F1 of our labelled sentences, over
all of them and per failure family of issue 11 (tags f1_sections ... f7_hedges). Findings are
folded per category (``fold_by_category``) before scoring. The last line gives every figure as
key=value.

Report text is built as the ingest stores it (pipeline.ingest.sources.build_report):
"COMPARISON: ...\nINDICATION: ...\nFINDINGS: ...\nIMPRESSION: ..."; the extractor ignores the
comparison and indication sections. Gold labels mapped from the tuning split only.

    python bench/extract_rules.py                       # default ../shared/data/openi
    python bench/extract_rules.py /path/to/openi --errors Nodule   # FP/FN of the TUNING split
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, no install

from pipeline.extract.rules.engine import RuleExtractor  # noqa: E402
from pipeline.fold import fold_by_category  # noqa: E402
from pipeline.ingest.sources import StudyItem, iter_openi  # noqa: E402

# ChestX-ray14 label -> our category id (Infiltration and Hernia are not scored: see the issue).
LABELS = {"Atelectasis": "atelectasis", "Cardiomegaly": "cardiomegaly",
          "Effusion": "pleural_effusion", "Mass": "mass", "Nodule": "nodule",
          "Pneumonia": "pneumonia", "Pneumothorax": "pneumothorax",
          "Consolidation": "consolidation", "Edema": "edema", "Emphysema": "emphysema",
          "Fibrosis": "fibrosis", "Pleural_Thickening": "pleural_thickening"}
TARGET_F1, BASELINE_F1 = 0.90, 0.73
TARGET_RPS, BASELINE_RPS = 2000.0, 100.0
FAMILY_TAG = re.compile(r"f\d_")  # labelled-set tags of issue 11's failure families
LABELLED = Path(__file__).resolve().parents[1] / "tests" / "data" / "labelled_sentences.jsonl"


def load_reports(tgz: Path) -> dict[str, str]:
    """uId ("CXR123") -> report text with section headers, as the ingest's Open-i adapter builds it."""
    return {item.study_id: item.report.text if item.report else ""
            for item in iter_openi(tgz) if isinstance(item, StudyItem)}


def load_gold(csv_path: Path) -> dict[str, set[str]]:
    with open(csv_path, newline="") as f:
        return {row["filename"]: {cat for lab, cat in LABELS.items() if row[lab] == "1"}
                for row in csv.DictReader(f)}


def predict(extractor: RuleExtractor, text: str, uncertain_positive: bool) -> set[str]:
    """Categories the report is positive for: findings folded the CheXpert way, per category."""
    ok = {"present", "uncertain"} if uncertain_positive else {"present"}
    return {cat for cat, f in fold_by_category(extractor.extract(text)).items()
            if f.presence.value in ok and cat in LABELS.values()}


def score(ids, gold, preds) -> dict[str, tuple[int, int, int]]:
    """Per category (tp, fp, fn)."""
    counts = {cat: [0, 0, 0] for cat in LABELS.values()}
    for i in ids:
        g, p = gold[i], preds[i]
        for cat in counts:
            counts[cat][0] += cat in g and cat in p
            counts[cat][1] += cat in p and cat not in g
            counts[cat][2] += cat in g and cat not in p
    return {k: tuple(v) for k, v in counts.items()}


def _typo_effect(ids, gold, plain, fixed) -> Counter:
    """Present findings the typo correction adds or removes, true and false by the gold labels."""
    c: Counter = Counter()
    for i in ids:
        for cat in fixed[i] - plain[i]:
            c["tp" if cat in gold[i] else "fp"] += 1
        for cat in plain[i] - fixed[i]:
            c["lost_tp" if cat in gold[i] else "lost_fp"] += 1
    return c


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def print_table(title: str, counts) -> float:
    print(f"\n{title}\n{'category':22s} {'P':>6s} {'R':>6s} {'F1':>6s} {'tp':>5s} {'fp':>5s} {'fn':>5s}")
    for cat, (tp, fp, fn) in counts.items():
        p, r, f = prf(tp, fp, fn)
        print(f"{cat:22s} {p:6.3f} {r:6.3f} {f:6.3f} {tp:5d} {fp:5d} {fn:5d}")
    tot = [sum(c[i] for c in counts.values()) for i in range(3)]
    p, r, f = prf(*tot)
    print(f"{'MICRO':22s} {p:6.3f} {r:6.3f} {f:6.3f} {tot[0]:5d} {tot[1]:5d} {tot[2]:5d}")
    return f


def measure_speed(extractor: RuleExtractor, texts: list[str], min_seconds: float) -> float:
    """Reports/s of ``extract`` on ONE core (the process is pinned), repeated to ``min_seconds``."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    n, t0 = 0, time.perf_counter()
    while True:
        for t in texts:
            extractor.extract(t)
        n += len(texts)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_seconds:
            return n / elapsed


def _labelled_counts(extractor: RuleExtractor, items: list[dict]) -> Counter:
    """tp / fp / fn of (category, presence), and severity / side agreement on the matches."""
    c: Counter = Counter()
    for item in items:
        pred, gold = defaultdict(list), defaultdict(list)
        for f in extractor.extract(item["text"]):
            pred[f.category, f.presence.value].append(
                (f.severity.value if f.severity else None, f.side.value if f.side else None))
        for g in item["findings"]:
            gold[g["category"], g["presence"]].append((g["severity"], g["side"]))
        c["tp"] += len(pred.keys() & gold.keys())
        c["fp"] += len(pred.keys() - gold.keys())
        c["fn"] += len(gold.keys() - pred.keys())
        for k in pred.keys() & gold.keys():
            for severity, side in gold[k]:  # each gold instance against the same-side one
                got = next((p for p in pred[k] if p[1] == side), pred[k][0])
                c["n"] += 1
                c["sev"] += got[0] == severity
                c["side"] += got[1] == side
    return c


def _f1(c: Counter) -> float:
    return 2 * c["tp"] / max(2 * c["tp"] + c["fp"] + c["fn"], 1)


def score_labelled(extractor: RuleExtractor, path: Path) -> dict[str, float]:
    """Presence-aware micro-F1 on our labelled sentences (category AND presence must match),
    over all of them and per failure family of issue 11 (tags "f1_sections" ... "f7_hedges")."""
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    c = _labelled_counts(extractor, items)
    p, r, f1 = prf(c["tp"], c["fp"], c["fn"])
    tp = max(c["n"], 1)
    print(f"\nLABELLED SET ({len(items)} sentences): presence-aware micro P {p:.3f} R {r:.3f} "
          f"F1 {f1:.3f} (target 0.92: ratio {f1 / 0.92:.3f}); on matched findings severity "
          f"{c['sev'] / tp:.3f}, side {c['side'] / tp:.3f}")
    figures = {"labelled_f1": f1}
    families = sorted({t for item in items for t in item["tags"] if FAMILY_TAG.match(t)})
    for tag in families:
        fc = _labelled_counts(extractor, [i for i in items if tag in i["tags"]])
        n, ftp = sum(tag in i["tags"] for i in items), max(fc["n"], 1)
        figures[f"{tag}_f1"] = _f1(fc)
        print(f"  family {tag:14s} {n:3d} sentences: F1 {_f1(fc):.3f}, severity "
              f"{fc['sev'] / ftp:.3f}, side {fc['side'] / ftp:.3f}")
    return figures


def show_errors(label: str, ids, gold, preds, reports) -> None:
    cat = LABELS[label]
    for i in sorted(ids):
        if (cat in gold[i]) != (cat in preds[i]):
            kind = "FN" if cat in gold[i] else "FP"
            body = reports[i].split("FINDINGS:", 1)[-1].replace("\n", " | ")
            print(f"{kind} {i}: {body}")


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("openi", nargs="?", type=Path, default=Path("../shared/data/openi"))
    ap.add_argument("--seconds", type=float, default=5.0, help="speed measurement duration")
    ap.add_argument("--errors", choices=sorted(LABELS), help="print FP/FN reports of the tuning split")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    reports = load_reports(args.openi / "NLMCXR_reports.tgz")
    gold = load_gold(args.openi / "openi_gld_std14.csv")
    test_ids = set((args.openi / "openi-testset.txt").read_text().split())
    tune_ids = set(gold) - test_ids
    extractor = RuleExtractor()
    print(f"rule extractor {extractor.version}; {len(reports)} reports, "
          f"{len(test_ids)} test ids, {len(tune_ids)} tuning ids")
    if args.errors:
        preds = {i: predict(extractor, reports[i], False) for i in tune_ids}
        show_errors(args.errors, tune_ids, gold, preds, reports)
        return 0
    results = {}
    plain = RuleExtractor(correct_typos=False)  # what the typo correction adds, on Open-i
    plain_preds = {i: predict(plain, reports[i], False) for i in gold}
    plain_counts = score(test_ids, gold, plain_preds)
    corrections = 0
    for unc in (False, True):
        extractor.typo_count = 0
        preds = {i: predict(extractor, reports[i], unc) for i in gold}
        corrections = corrections or extractor.typo_count  # words corrected in one pass
        how = "uncertain counted positive" if unc else "present only (the acceptance metric)"
        results[unc] = (print_table(f"TEST split (771), {how}", score(test_ids, gold, preds)),
                        print_table(f"TUNING split, {how}", score(tune_ids, gold, preds)))
    typo_fp = _typo_effect(test_ids | tune_ids, gold, plain_preds,
                           {i: predict(extractor, reports[i], False) for i in gold})
    plain_f1 = prf(*[sum(c[k] for c in plain_counts.values()) for k in range(3)])[2]
    print(f"\nTYPO CORRECTION: {corrections} words corrected in {len(gold)} labelled reports; "
          f"test micro-F1 {results[False][0]:.3f} with, {plain_f1:.3f} without; "
          f"findings it adds: {typo_fp['tp']} true, {typo_fp['fp']} false; removes: "
          f"{typo_fp['lost_tp']} true, {typo_fp['lost_fp']} false (present findings, all of them)")
    labelled = score_labelled(extractor, LABELLED)
    rps = measure_speed(extractor, list(reports.values()), args.seconds)
    f1 = results[False][0]
    print(f"\npresent-finding micro-F1, test: {f1:.3f}  (target {TARGET_F1}: ratio {f1 / TARGET_F1:.3f};"
          f" baseline {BASELINE_F1}: ratio {f1 / BASELINE_F1:.2f})")
    print(f"speed: {rps:,.0f} reports/s on one core  (target {TARGET_RPS:,.0f}: ratio "
          f"{rps / TARGET_RPS:.2f}; baseline {BASELINE_RPS:.0f}: ratio {rps / BASELINE_RPS:.1f}x)")
    figures = {"openi_test_f1": f1, "openi_tune_f1": results[False][1],
               "openi_test_f1_no_typo_correction": plain_f1, "openi_typo_fp_added": typo_fp["fp"],
               "openi_typo_tp_added": typo_fp["tp"], "openi_typo_corrections": corrections,
               "openi_test_f1_uncertain_positive": results[True][0], **labelled}
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in figures.items()) + f" reports_per_s={rps:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
