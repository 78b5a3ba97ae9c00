"""The rule extractor scored on demo reports: prose written by the demo generator, not tuned on.

The demo's truth lists every finding of a study, with side-specific negations ("no left
effusion" beside a right one); the extractor keeps one finding per category per report, folded
the CheXpert way (present > uncertain > absent). The truth is folded the same way before
scoring. Categories the extractor derives by hierarchy (lung_lesion from nodule/mass,
pleural_other from pleural thickening) and lung_opacity, which the truth does not list, are
left out. Prints micro P/R/F1 of (category, presence), and severity/side agreement on matches.

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
from pipeline.extract.rules.engine import RuleExtractor

NOT_IN_TRUTH = {"lung_lesion", "pleural_other", "lung_opacity"}
RANK = {"present": 2, "uncertain": 1, "absent": 0}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/extract_demo.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="demo studies (default 2000)")
    p.add_argument("--seed", type=int, default=11, help="corpus seed (default 11)")
    return p.parse_args(argv)


def fold(findings: list[dict]) -> dict[str, dict]:
    """One finding per category, the strongest presence winning (CheXpert)."""
    out: dict[str, dict] = {}
    for f in findings:
        if f["category"] not in out or RANK[f["presence"]] > RANK[out[f["category"]]["presence"]]:
            out[f["category"]] = f
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    ex = RuleExtractor()
    counts, agree = Counter(), Counter()
    misses: Counter = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate_corpus(root, n=args.n, seed=args.seed, size=64, dicom_share=0.0, workers=2)
        reports = {r["study_id"]: (root / r["report"]).read_text()
                   for r in csv.DictReader(open(root / "manifest.csv"))}
        t0 = time.perf_counter()
        for line in (root / "truth.jsonl").read_text().splitlines():
            truth = json.loads(line)
            want = fold([f for f in truth["findings"] if f["category"] not in NOT_IN_TRUTH])
            got = {f.category: f for f in ex.extract(reports[truth["study_id"]])
                   if f.category not in NOT_IN_TRUTH}
            for cat in want.keys() | got.keys():
                w, g = want.get(cat), got.get(cat)
                if w and g and w["presence"] == g.presence.value:
                    counts["tp"] += 1
                    agree["severity"] += (g.severity.value if g.severity else None) == w["severity"]
                    agree["side"] += (g.location.side.value if g.location.side else None) == w["side"]
                    continue
                counts["fn"] += bool(w)
                counts["fp"] += bool(g)
                misses[(cat, w["presence"] if w else "-", g.presence.value if g else "-")] += 1
        seconds = time.perf_counter() - t0
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    print(f"{args.n} demo reports, {args.n / seconds:,.0f} reports/s")
    print(f"(category, presence) micro P {p:.3f} R {r:.3f} F1 {2 * p * r / max(p + r, 1e-9):.3f} "
          f"(tp {tp}, fp {fp}, fn {fn})")
    print(f"on matches: severity agrees {agree['severity'] / max(tp, 1):.3f}, "
          f"side agrees {agree['side'] / max(tp, 1):.3f}")
    print("most frequent disagreements (category, truth, extractor):")
    for (cat, w, g), n in misses.most_common(8):
        print(f"  {n:4d}  {cat:28s} truth {w:9s} extractor {g}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
