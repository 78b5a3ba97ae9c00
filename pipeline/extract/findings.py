"""The finding record every extractor produces, and the file-mode JSONL shape.

One schema for the rule-based and the LLM extractor, so that the DB writer, the file writer and
the benchmarks treat them alike. ``evidence`` must be a verbatim slice of the report text:
``text[evidence.start:evidence.end] == evidence.text`` (``db.evidence.check_span``, applied to
every extractor's output by ``pipeline.extract.run`` before it is written).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from db.evidence import check_span
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

    def to_json(self) -> dict:
        """The file-mode JSON object (``side`` repeated at top level, as the contract asks)."""
        d = self.model_dump(mode="json")
        d["side"] = d["location"]["side"]
        return d


def evidence_is_verbatim(text: str, ev: Evidence) -> bool:
    """``db.evidence.check_span`` of a finding's evidence: the one verbatim rule."""
    return check_span(text, ev.start, ev.end, ev.text)


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
