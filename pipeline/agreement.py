"""Agreement figures of the review: extractor vs reviewers, and reviewer vs reviewer.

Pure functions over rows that ``db.queries`` returns (no I/O), so the arithmetic is unit-tested on
hand-computed cases.

Definitions
  * A reviewer's decision on a finding is their latest event on it (accept / edit / reject /
    add) that no later undo of theirs reverted. "add" counts as accepting the finding one wrote.
  * Reviewer vs reviewer: the binary label accept-as-is (1) vs not (edit or reject, 0). For every
    finding decided by >= 2 reviewers, each pair of them gives one (label_a, label_b) item, with
    a the lower reviewer id. Percent agreement = share of items with equal labels; Cohen's kappa
    = (p_o - p_e) / (1 - p_e), p_e from each side's marginal accept rate (Cohen 1960).
  * Extractor vs reviewers: per extractor version and category, of its findings with a final
    status other than proposed, the share accepted / edited / rejected; "added" = findings a
    reviewer added (not rejected since) on reports that extractor version had done: what it
    missed. recall proxy = (accepted + edited) / (accepted + edited + added).
  * Per category (CheXpert's per-category answer): findings are kept one per instance, so on
    every fully reviewed report both what an extractor version first proposed and what review
    settled are folded to one answer per category (``fold_by_category``: present > uncertain >
    absent, or blank when the category is not named). For each (extractor, version, category),
    over the reports where either side names the category: the share where the two folded
    presences agree, and how they disagree (extractor only, review only, other presence).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from pipeline.fold import fold_by_category

DECISIONS = ("accept", "edit", "reject", "add")
ACCEPTING = ("accept", "add")


def percent_agreement(items: Sequence[tuple[int, int]]) -> float | None:
    """Share of items whose two labels agree; None with no items."""
    if not items:
        return None
    return sum(a == b for a, b in items) / len(items)


def cohen_kappa(items: Sequence[tuple[int, int]]) -> float | None:
    """Cohen's kappa of two raters' binary labels; None when undefined (no items, or chance
    agreement 1: both raters gave one same label to everything)."""
    if not items:
        return None
    n = len(items)
    p_o = sum(a == b for a, b in items) / n
    pa = sum(a for a, _ in items) / n
    pb = sum(b for _, b in items) / n
    p_e = pa * pb + (1 - pa) * (1 - pb)
    if p_e >= 1:
        return None
    return (p_o - p_e) / (1 - p_e)


def effective_decisions(events: Iterable) -> dict[tuple[int, int], str]:
    """(finding_id, reviewer_id) -> the reviewer's standing action (see module docstring).

    ``events``: objects with id, finding_id, reviewer_id, action, undoes (db.queries'
    DecisionEvent), in any order. Events without a reviewer (pipeline writes) are ignored.
    """
    events = sorted((e for e in events if e.reviewer_id is not None), key=lambda e: e.id)
    undone = {e.undoes for e in events if e.action == "undo"}
    out: dict[tuple[int, int], str] = {}
    for e in events:
        if e.action in DECISIONS and e.id not in undone:
            out[e.finding_id, e.reviewer_id] = e.action
    # a finding whose every decision by a reviewer was undone has no decision of theirs
    return out


@dataclass(frozen=True)
class PairAgreement:
    reviewer_a: int
    reviewer_b: int
    n: int  # findings both decided
    percent: float | None
    kappa: float | None


@dataclass(frozen=True)
class ReviewerAgreement:
    n_findings: int  # findings decided by >= 2 reviewers
    n_items: int  # reviewer pairs over those findings
    percent: float | None
    kappa: float | None
    pairs: list[PairAgreement]


def reviewer_agreement(decisions: dict[tuple[int, int], str]) -> ReviewerAgreement:
    """Accept-vs-not agreement between reviewers, pooled over all pairs and per pair."""
    by_finding: dict[int, dict[int, int]] = defaultdict(dict)
    for (finding, reviewer), action in decisions.items():
        by_finding[finding][reviewer] = int(action in ACCEPTING)
    per_pair: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    shared = 0
    for labels in by_finding.values():
        if len(labels) < 2:
            continue
        shared += 1
        for a, b in combinations(sorted(labels), 2):
            per_pair[a, b].append((labels[a], labels[b]))
    items = [item for pair in per_pair.values() for item in pair]
    pairs = [PairAgreement(a, b, len(v), percent_agreement(v), cohen_kappa(v))
             for (a, b), v in sorted(per_pair.items())]
    return ReviewerAgreement(shared, len(items), percent_agreement(items), cohen_kappa(items),
                             pairs)


def extractor_summary(status_counts: Iterable[tuple[str, str, str, str, int]],
                      added_counts: Iterable[tuple[str, str, str, int]]) -> list[dict]:
    """One row per (extractor, version, category): reviewed findings' outcome shares and the
    findings reviewers added that it missed (see module docstring)."""
    rows: dict[tuple[str, str, str], dict] = {}

    def row(extractor: str, version: str, category: str) -> dict:
        return rows.setdefault((extractor, version, category), {
            "extractor": extractor, "version": version, "category": category, "proposed": 0,
            "accepted": 0, "edited": 0, "rejected": 0, "added": 0})

    for extractor, version, category, status, n in status_counts:
        if status in ("proposed", "accepted", "edited", "rejected"):
            row(extractor, version, category)[status] += n
    for extractor, version, category, n in added_counts:
        row(extractor, version, category)["added"] += n
    out = []
    for r in rows.values():
        reviewed = r["accepted"] + r["edited"] + r["rejected"]
        kept = r["accepted"] + r["edited"]
        r["reviewed"] = reviewed
        for status in ("accepted", "edited", "rejected"):
            r[f"{status}_share"] = r[status] / reviewed if reviewed else None
        r["recall_proxy"] = kept / (kept + r["added"]) if kept + r["added"] else None
        out.append(r)
    return sorted(out, key=lambda r: (r["extractor"], r["version"], r["category"]))


def category_agreement(said: Iterable, settled: Iterable) -> list[dict]:
    """Per (extractor, version, category), folded-answer agreement on reviewed reports (see the
    module docstring). ``said`` / ``settled``: finding-like rows with report_id, extractor,
    extractor_version, category, presence, severity, side, region (db.queries'
    AnsweredFinding)."""
    runs: dict[tuple[str, str], dict[int, list]] = defaultdict(lambda: defaultdict(list))
    for f in said:
        runs[f.extractor, f.extractor_version][f.report_id].append(f)
    truth: dict[int, list] = defaultdict(list)
    for f in settled:
        truth[f.report_id].append(f)
    rows: dict[tuple[str, str, str], dict] = {}
    for (extractor, version), reports in runs.items():
        for report_id, findings in reports.items():
            got, want = fold_by_category(findings), fold_by_category(truth.get(report_id, ()))
            for cat in got.keys() | want.keys():
                r = rows.setdefault((extractor, version, cat), {
                    "extractor": extractor, "version": version, "category": cat, "reports": 0,
                    "agree": 0, "extractor_only": 0, "review_only": 0, "other_presence": 0})
                g, w = got.get(cat), want.get(cat)
                r["reports"] += 1
                if g and w:
                    r["agree" if g.presence == w.presence else "other_presence"] += 1
                else:
                    r["extractor_only" if g else "review_only"] += 1
    for r in rows.values():
        r["agreement"] = r["agree"] / r["reports"]
    return sorted(rows.values(), key=lambda r: (r["extractor"], r["version"], r["category"]))
