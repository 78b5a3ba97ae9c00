"""Who reviews what: a balanced, idempotent plan over the reports not yet assigned.

Reports already assigned are never touched, so work done (or started) is never reassigned and
re-running the same command adds nothing. Of all matching reports, ``double_share`` should have
two reviewers; the shortfall is made up among the new ones, picked by a hash of the report id
(spread over the corpus rather than the first ids). Each report goes to the least-loaded
reviewers (assignments already held count), so loads stay within one of each other.
"""

from __future__ import annotations

import hashlib
import heapq
from dataclasses import dataclass

from db import queries
from db.queries import Actor


@dataclass(frozen=True)
class AssignSummary:
    reports: int  # matching reports
    new_single: int  # newly assigned to one reviewer
    new_double: int  # newly assigned to two
    already: int  # left as they were
    per_reviewer: dict[str, int]  # new assignments by reviewer name

    def line(self) -> str:
        shares = " ".join(f"{name}={n}" for name, n in sorted(self.per_reviewer.items()))
        return (f"reports={self.reports} new_single={self.new_single} "
                f"new_double={self.new_double} already_assigned={self.already} {shares}").strip()


def _spread(report_id: int) -> str:
    return hashlib.sha256(str(report_id).encode()).hexdigest()


def plan(assigned: dict[int, list[int]], reviewers: list[int], double_share: float,
         loads: dict[int, int]) -> list[tuple[int, int]]:
    """(report id, reviewer id) pairs to add: see the module docstring."""
    if not 0 <= double_share <= 1:
        raise ValueError(f"--double-share must be within 0..1, got {double_share}")
    if not reviewers:
        raise ValueError("name at least one reviewer")
    if double_share > 0 and len(reviewers) < 2:
        raise ValueError("double review needs at least two reviewers")
    new = sorted(r for r, who in assigned.items() if not who)
    have_double = sum(len(who) >= 2 for who in assigned.values())
    k = min(len(new), max(0, round(double_share * len(assigned)) - have_double))
    doubles = set(sorted(new, key=_spread)[:k])
    heap = [(loads.get(r, 0), i, r) for i, r in enumerate(reviewers)]
    heapq.heapify(heap)
    pairs: list[tuple[int, int]] = []
    for report in new:
        taken = [heapq.heappop(heap) for _ in range(2 if report in doubles else 1)]
        for load, i, reviewer in taken:
            pairs.append((report, reviewer))
            heapq.heappush(heap, (load + 1, i, reviewer))
    return pairs


def assign_studies(session, *, reviewers: list[str], actor: Actor, double_share: float = 0.0,
                   dataset: str | None = None, split: str | None = None) -> AssignSummary:
    """Plan and store the assignments of the matching studies' reports (one transaction)."""
    accounts = {a.name: a for a in queries.list_accounts(session=session)}
    missing = [n for n in reviewers if n not in accounts or accounts[n].disabled]
    if missing:
        raise ValueError(f"no active account named {', '.join(map(repr, missing))}")
    ids = [accounts[n].id for n in dict.fromkeys(reviewers)]
    assigned = queries.assignable_reports(session=session, dataset=dataset, split=split)
    pairs = plan(assigned, ids, double_share, queries.reviewer_loads(session=session))
    names = {a.id: a.name for a in accounts.values()}
    per = {names[i]: 0 for i in ids}
    for _, reviewer in pairs:
        per[names[reviewer]] += 1
    counts: dict[int, int] = {}
    for report, _ in pairs:
        counts[report] = counts.get(report, 0) + 1
    summary = AssignSummary(len(assigned), sum(n == 1 for n in counts.values()),
                            sum(n == 2 for n in counts.values()),
                            sum(bool(w) for w in assigned.values()), per)
    queries.add_assignments(pairs, actor=actor, session=session, summary={
        "reviewers": list(dict.fromkeys(reviewers)), "double_share": double_share,
        "dataset": dataset, "split": split, "new_single": summary.new_single,
        "new_double": summary.new_double})
    return summary
