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
  * Double review (below): kappa per category between the two assigned reviewers, each side's
    answers folded per category the CheXpert way (``pipeline.chexpert.fold``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from pipeline.chexpert import fold

DECISIONS = ("accept", "edit", "reject", "add")
ACCEPTING = ("accept", "add")


def percent_agreement(items: Sequence[tuple[int, int]]) -> float | None:
    """Share of items whose two labels agree; None with no items."""
    if not items:
        return None
    return sum(a == b for a, b in items) / len(items)


def cohen_kappa(items: Sequence[tuple]) -> float | None:
    """Cohen's kappa of two raters' labels (any hashable categories: 1/0/-1/blank, ...);
    None when undefined (no items, or chance agreement 1: both raters gave one label to all).

    kappa = (p_o - p_e) / (1 - p_e), p_e = sum over labels of p_a(label) * p_b(label)
    (Cohen 1960), as sklearn.metrics.cohen_kappa_score computes it.
    """
    if not items:
        return None
    n = len(items)
    p_o = sum(a == b for a, b in items) / n
    count_a, count_b = Counter(a for a, _ in items), Counter(b for _, b in items)
    p_e = sum(count_a[k] * count_b[k] for k in count_a) / (n * n)
    if p_e >= 1 - 1e-12:
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


# --- reviewer vs reviewer on settled double reviews -------------------------------------------
#
# Between the two assigned reviewers of each double-reviewed report that both finished (the
# adjudicator is never a rater). Per category, each reviewer's answers fold to CheXpert's
# 1 / -1 / 0 / blank (pipeline.chexpert.fold): one (label_a, label_b) pair per report; overall
# pools every (report, category) pair of the categories either reviewer mentioned. The 95%
# interval is a percentile bootstrap over reports (resampled whole, so a report's categories
# stay together). Below MIN_PAIRS reports a figure is shown as too few to read.

MIN_PAIRS = 10
BOOTSTRAP_ROUNDS = 1000
BLANK = "blank"


@dataclass(frozen=True)
class KappaFigure:
    category: str  # a category id, or "overall"
    n: int  # reports (pairs of answers) it rests on
    kappa: float | None
    low: float | None  # bootstrap 95% interval
    high: float | None
    percent: float | None  # plain percent agreement of the same labels

    @property
    def readable(self) -> bool:
        return self.n >= MIN_PAIRS


def bootstrap_ci(groups: Sequence[Sequence[tuple]], rounds: int = BOOTSTRAP_ROUNDS,
                 seed: int = 0) -> tuple[float | None, float | None]:
    """Percentile 95% interval of the kappa of the pooled items, resampling ``groups``
    (one per report, all of one length) with replacement; rounds where kappa is undefined are
    skipped. Vectorised over rounds (numpy), in chunks of bounded memory."""
    if not groups:
        return None, None
    codes = {label: i for i, label in enumerate(sorted(
        {str(x) for g in groups for item in g for x in item}))}
    a = np.array([[codes[str(x)] for x, _ in g] for g in groups])  # (n reports, items each)
    b = np.array([[codes[str(y)] for _, y in g] for g in groups])
    rng = np.random.default_rng(seed)
    n, per = a.shape
    step = max(1, 20_000_000 // max(n * per, 1))
    values = []
    for start in range(0, rounds, step):
        idx = rng.integers(0, n, size=(min(step, rounds - start), n))  # (rounds, n)
        ra, rb = a[idx], b[idx]  # (rounds, n, per)
        p_o = (ra == rb).mean(axis=(1, 2))
        p_e = sum((ra == k).mean(axis=(1, 2)) * (rb == k).mean(axis=(1, 2))
                  for k in range(len(codes)))
        ok = p_e < 1 - 1e-12
        values.append((p_o - p_e)[ok] / (1 - p_e[ok]))
    kappas = np.sort(np.concatenate(values))
    if not len(kappas):
        return None, None
    return (float(kappas[int(0.025 * (len(kappas) - 1))]),
            float(kappas[int(0.975 * (len(kappas) - 1))]))


def category_kappas(pairs: Sequence[tuple[dict[str, int], dict[str, int]]],
                    rounds: int = BOOTSTRAP_ROUNDS) -> list[KappaFigure]:
    """Per category and overall (first) kappa of the two reviewers' folded labels; ``pairs``:
    one (fold of A's answers, fold of B's answers) per double-reviewed report."""
    categories = sorted({c for a, b in pairs for c in (*a, *b)})
    per_report = [[(a.get(c, BLANK), b.get(c, BLANK)) for c in categories] for a, b in pairs]

    def figure(name: str, groups: list[list[tuple]]) -> KappaFigure:
        items = [i for g in groups for i in g]
        low, high = bootstrap_ci(groups, rounds) if len(groups) >= MIN_PAIRS else (None, None)
        return KappaFigure(name, len(groups), cohen_kappa(items), low, high,
                           percent_agreement(items))

    out = [figure("overall", per_report)]
    for j, c in enumerate(categories):
        out.append(figure(c, [[g[j]] for g in per_report]))
    return out


def attribute_agreement(matched: Iterable[tuple[tuple, tuple]]) -> dict[str, tuple[float | None,
                                                                                   int]]:
    """Percent agreement on presence, severity and side over the proposals both reviewers
    answered: ``matched`` holds ((status, presence, severity, side) of A, same of B).

    presence: both rejected, or both kept with the same presence; severity and side: of the
    proposals both kept, the same value (None = not stated counts as a value).
    """
    presence, severity, side = [], [], []
    for a, b in matched:
        kept_a, kept_b = a[0] != "rejected", b[0] != "rejected"
        presence.append((a[1] if kept_a else "rejected", b[1] if kept_b else "rejected"))
        if kept_a and kept_b:
            severity.append((a[2], b[2]))
            side.append((a[3], b[3]))
    return {name: (percent_agreement(items), len(items))
            for name, items in (("presence", presence), ("severity", severity),
                                ("side", side))}


def double_review_figures(pairs) -> tuple[list[KappaFigure], dict[str, tuple[float | None, int]]]:
    """Kappa per category (and overall) and attribute agreement of ``pairs``
    (db.queries.DoublePair: each reviewer's (finding_id, status, category, presence, severity,
    side) answers on one finished double review)."""
    folded, matched = [], []
    for pair in pairs:
        a, b = pair.answers
        folded.append(tuple(fold((row[2], row[3]) for row in side if row[1] != "rejected")
                            for side in (a, b)))
        by_b = {row[0]: row for row in b if row[0] is not None}
        matched += [(row[1:2] + row[3:], by_b[row[0]][1:2] + by_b[row[0]][3:])
                    for row in a if row[0] in by_b]
    return category_kappas(folded), attribute_agreement(matched)


def extractor_validation(data) -> list[dict]:
    """Precision and recall of each extractor version per category against the settled labels
    (``data``: db.queries.ValidationData), at the (category, presence) level.

    A proposal on a settled report is a true positive when its settled answer keeps it with the
    same category and presence, else a false positive (rejected, or changed). A kept settled
    finding that no proposal of that version matched (one a reviewer added, or one whose
    category/presence the reviewers changed) is a false negative of every version that
    extracted the report.
    """
    answer_of = {(r, f): (st, c, p) for r, f, st, c, p in data.answers if f is not None}
    counts: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # tp fp fn
    matched: dict[tuple[str, str], set] = defaultdict(set)  # (extractor, version) -> keys hit
    for ext, ver, rep, fid, cat, pres in data.proposals:
        st, c, p = answer_of.get((rep, fid), ("rejected", None, None))
        hit = st != "rejected" and (c, p) == (cat, pres)
        counts[ext, ver, cat][0 if hit else 1] += 1
        if hit:
            matched[ext, ver].add((rep, fid))
    kept = [(r, f, c) for r, f, st, c, _ in data.answers if st != "rejected"]
    by_report: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for ext, ver, rep in data.extracted:
        by_report[rep].append((ext, ver))
    for rep, fid, cat in kept:
        for ext, ver in by_report.get(rep, ()):
            if (rep, fid) not in matched[ext, ver]:
                counts[ext, ver, cat][2] += 1
    rows = []
    for (ext, ver, cat), (tp, fp, fn) in sorted(counts.items()):
        rows.append({"extractor": ext, "version": ver, "category": cat, "tp": tp, "fp": fp,
                     "fn": fn, "precision": tp / (tp + fp) if tp + fp else None,
                     "recall": tp / (tp + fn) if tp + fn else None})
    return rows
