"""The finding record every extractor produces, and the file-mode JSONL shape.

One schema for the rule-based and the LLM extractor, so that the DB writer, the file writer and
the benchmarks treat them alike. ``evidence`` must be a verbatim slice of the report text:
``text[evidence.start:evidence.end] == evidence.text``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from db.models import Presence, Severity, Side


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = Field(ge=0)  # character offset into the report text
    end: int = Field(ge=0)  # exclusive
    text: str


class Location(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    side: Side | None = None
    region: str | None = None  # a region id from pipeline/resources/locations.yaml


class ExtractedFinding(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    category: str  # a category id from pipeline/resources/vocabulary.yaml
    presence: Presence
    severity: Severity | None = None
    location: Location = Location()
    evidence: Evidence
    extractor: str  # "rules/<version>" or "llm/<prompt version>/<model>"

    @property
    def side(self) -> Side | None:
        return self.location.side

    @property
    def region(self) -> str | None:
        return self.location.region

    def to_json(self) -> dict:
        """The file-mode JSON object (``side`` repeated at top level, as the contract asks)."""
        d = self.model_dump(mode="json")
        d["side"] = d["location"]["side"]
        return d


def evidence_is_verbatim(text: str, ev: Evidence) -> bool:
    return 0 <= ev.start <= ev.end <= len(text) and text[ev.start:ev.end] == ev.text


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


class ExtractionResult(BaseModel):
    """The outcome for one report: its findings, or a specific error (never both)."""

    id: str  # the input line's id (file mode) or str(Report.id) (DB mode)
    findings: list[ExtractedFinding] = []
    error: str | None = None  # e.g. "invalid JSON from model: ...", "evidence not in report: ..."
    rejected: list[str] = []  # per-finding rejections kept for the record (non-verbatim evidence...)


class Extractor(Protocol):
    """What ``pipeline.extract.run`` needs of an extractor."""

    name: str  # "rules" | "llm"
    version: str  # bumps whenever output may change; DB mode re-extracts on a new version

    def extract_batch(self, items: Sequence[tuple[str, str]]) -> Iterator[ExtractionResult]:
        """Extract from (id, text) pairs, yielding one result per item as each completes."""
        ...
