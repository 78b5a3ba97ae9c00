"""The rule extractor scored on demo reports: prose written by the demo generator, not tuned on.

The demo's truth lists every finding of a study, with side-specific negations ("no left
effusion" beside a right one), and the extractor keeps one finding per (category, side)
instance. Both are scored twice: per instance, (category, side, presence) matched; and per
category, both folded by the one CheXpert fold (``fold_by_category``: present > uncertain >
absent, sides merged). The demo truth lists all support devices as one unsided finding while the
extractor keeps each located device ("right PICC", "left pacemaker"): those are most of the
per-instance disagreements. Categories the extractor derives by hierarchy (lung_lesion from nodule/mass,
pleural_other from pleural thickening) and lung_opacity, which the truth does not list, are
left out. Prints micro P/R/F1 of (category, presence) per category and per instance, and severity/side
agreement on the per-category matches; the last line gives them as key=value.

    .venv/bin/python bench/extract_demo.py
    .venv/bin/python bench/extract_demo.py --n 3000 --seed 11
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

from pipeline.demo.generate import generate_corpus
from pipeline.extract.findings import Evidence, ExtractedFinding, Location
from pipeline.extract.rules.engine import RuleExtractor
from pipeline.fold import fold_by_category

NOT_IN_TRUTH = {"lung_lesion", "pleural_other", "lung_opacity"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/extract_demo.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="demo studies (default 2000)")
    p.add_argument("--seed", type=int, default=11, help="corpus seed (default 11)")
    return p.parse_args(argv)


def as_finding(truth: dict) -> ExtractedFinding:
    """A truth item in the extractor's shape, so that one fold serves both."""
    return ExtractedFinding(category=truth["category"], presence=truth["presence"],
                            severity=truth["severity"],
                            location=Location(side=truth["side"], region=truth["region"]),
                            evidence=Evidence(start=0, end=0, text=""), extractor="truth")


def instances(findings) -> Counter:
    """Multiset of (category, side, presence) instances."""
    return Counter((f.category, f.side, f.presence) for f in findings)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ex = RuleExtractor()
    counts, agree, inst = Counter(), Counter(), Counter()
    misses: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_corpus(root, n=args.n, seed=args.seed, size=64, dicom_share=0.0, workers=2)
        reports = {r["study_id"]: (root / r["report"]).read_text()
                   for r in csv.DictReader(open(root / "manifest.csv"))}
        t0 = time.perf_counter()
        for line in (root / "truth.jsonl").read_text().splitlines():
            truth = json.loads(line)
            want_all = [as_finding(f) for f in truth["findings"] if f["category"] not in NOT_IN_TRUTH]
            got_all = [f for f in ex.extract(reports[truth["study_id"]])
                       if f.category not in NOT_IN_TRUTH]
            wi, gi = instances(want_all), instances(got_all)
            inst["tp"] += sum((wi & gi).values())
            inst["fn"] += sum((wi - gi).values())
            inst["fp"] += sum((gi - wi).values())
            want, got = fold_by_category(want_all), fold_by_category(got_all)
            for cat in want.keys() | got.keys():
                w, g = want.get(cat), got.get(cat)
                if w and g and w.presence == g.presence:
                    counts["tp"] += 1
                    agree["severity"] += g.severity == w.severity
                    agree["side"] += g.side == w.side
                    continue
                counts["fn"] += bool(w)
                counts["fp"] += bool(g)
                misses[(cat, w.presence.value if w else "-", g.presence.value if g else "-")] += 1
        seconds = time.perf_counter() - t0
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    f1 = 2 * tp / max(2 * tp + fp + fn, 1)
    inst_f1 = 2 * inst["tp"] / max(2 * inst["tp"] + inst["fp"] + inst["fn"], 1)
    sev, side = agree["severity"] / max(tp, 1), agree["side"] / max(tp, 1)
    print(f"{args.n} demo reports, {args.n / seconds:,.0f} reports/s")
    print(f"per category, (category, presence) micro P {tp / max(tp + fp, 1):.3f} "
          f"R {tp / max(tp + fn, 1):.3f} F1 {f1:.3f} (tp {tp}, fp {fp}, fn {fn})")
    print(f"per instance, (category, side, presence) micro F1 {inst_f1:.3f} "
          f"(tp {inst['tp']}, fp {inst['fp']}, fn {inst['fn']})")
    print(f"on per-category matches: severity agrees {sev:.3f}, side agrees {side:.3f}")
    print("most frequent disagreements (category, truth, extractor):")
    for (cat, w, g), n in misses.most_common(8):
        print(f"  {n:4d}  {cat:28s} truth {w:9s} extractor {g}")
    print(f"demo_category_f1={f1:.3f} demo_instance_f1={inst_f1:.3f} demo_severity_agreement={sev:.3f} "
          f"demo_side_agreement={side:.3f} reports_per_s={args.n / seconds:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
