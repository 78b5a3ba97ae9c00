"""The CheXpert fold: one answer per category from per-instance findings.

The store and the extractors keep one finding per disease instance, as MedFILIP's triplets are
("moderate right effusion, no left effusion" is two findings). Where a per-category answer is
wanted -- the CheXpert export, the scoring benches, per-category agreement -- it is folded here,
in one place, so every caller folds the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from db.models import Presence, Severity, Side

PRESENCE_RANK = {Presence.present: 2, Presence.uncertain: 1, Presence.absent: 0}
SEVERITY_RANK = {Severity.mild: 1, Severity.moderate: 2, Severity.severe: 3}


class FindingLike(Protocol):
    """What the fold reads: an ExtractedFinding, a db Finding row, a demo truth item."""

    category: str
    presence: Presence
    severity: Severity | None

    @property
    def side(self) -> Side | None: ...

    @property
    def region(self) -> str | None: ...


@dataclass(frozen=True)
class CategoryAnswer:
    """One category's folded answer for a report (CheXpert's 1 / -1 / 0, plus the grade)."""

    category: str
    presence: Presence
    severity: Severity | None
    side: Side | None
    region: str | None
    source: FindingLike  # the first finding at the winning presence (its evidence, its id)


def fold_by_category(findings: Iterable[FindingLike]) -> dict[str, CategoryAnswer]:
    """One answer per category, the CheXpert way: category -> its folded answer.

    Only where a per-category answer is wanted (CheXpert export, scoring benches, per-category
    agreement); extractors and the store keep one finding per instance. The strongest presence
    wins (present > uncertain > absent); among the findings at that presence severity maxes,
    distinct sides merge to bilateral, the first region is kept.
    """
    by_cat: dict[str, list[FindingLike]] = {}
    for f in findings:
        by_cat.setdefault(f.category, []).append(f)
    out = {}
    for cat, group in by_cat.items():
        top = max(PRESENCE_RANK[f.presence] for f in group)
        best = [f for f in group if PRESENCE_RANK[f.presence] == top]
        sides = {Side(f.side) for f in best if f.side}
        side = sides.pop() if len(sides) == 1 else (Side.bilateral if sides else None)
        severity = max((Severity(f.severity) for f in best if f.severity),
                       key=SEVERITY_RANK.get, default=None)
        out[cat] = CategoryAnswer(cat, Presence(best[0].presence), severity, side,
                                  next((f.region for f in best if f.region), None), best[0])
    return out
