"""SQLModel tables of the curation store (ARCHITECTURE.md, "Data model").

Nothing here holds a patient identifier: studies and images carry salted pseudonyms, dates are
shifted per patient, and DICOM headers are never stored (see ``pipeline.ingest.deid``).
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


class Presence(enum.StrEnum):
    present = "present"
    absent = "absent"
    uncertain = "uncertain"


class Severity(enum.StrEnum):
    mild = "mild"
    moderate = "moderate"
    severe = "severe"


class Side(enum.StrEnum):
    left = "left"
    right = "right"
    bilateral = "bilateral"


class FindingStatus(enum.StrEnum):
    proposed = "proposed"
    accepted = "accepted"
    edited = "edited"
    rejected = "rejected"
    added = "added"


class KnowledgeSource(enum.StrEnum):
    written = "written"
    llm_draft = "llm-draft"


class KnowledgeStatus(enum.StrEnum):
    draft = "draft"
    approved = "approved"


class ReviewerRole(enum.StrEnum):
    reviewer = "reviewer"
    adjudicator = "adjudicator"
    admin = "admin"


class Split(enum.StrEnum):
    train = "train"
    val = "val"
    test = "test"


# Enums are stored as their plain string values (portable across SQLite and PostgreSQL, and
# readable in raw SQL); pydantic validates them on the way in.


class Study(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_key: str = Field(unique=True, index=True, max_length=64)  # salted pseudonym of (dataset, source study id)
    patient_key: str = Field(index=True, max_length=64)  # salted pseudonym of the patient id
    dataset: str = Field(index=True, max_length=64)  # adapter/source name, e.g. "openi", "demo"
    split: str | None = Field(default=None, index=True, max_length=16)
    study_date: date | None = None  # shifted by a per-patient offset, never the real date
    created_at: datetime = Field(default_factory=utcnow)


class Image(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True, ondelete="CASCADE")
    image_key: str = Field(unique=True, index=True, max_length=64)  # salted pseudonym of the source image id
    path: str  # de-identified high-bit-depth pixel file (training), relative to the data dir
    display_path: str | None = None  # 8-bit windowed PNG for display
    thumb_path: str | None = None  # small 8-bit PNG thumbnail
    view: str | None = Field(default=None, max_length=16)  # PA, AP, LATERAL, LL, ...
    width: int
    height: int
    bits_stored: int = 8
    photometric: str | None = Field(default=None, max_length=16)  # as in the source; stored pixels are MONOCHROME2
    window_center: float | None = None
    window_width: float | None = None
    source_format: str = Field(max_length=8)  # dicom | png | jpeg
    pixel_sha256: str = Field(max_length=64)


class Report(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    study_id: int = Field(foreign_key="study.id", index=True, ondelete="CASCADE")
    text: str = Field(sa_column=Column(Text, nullable=False))  # full report, sections joined
    findings: str | None = Field(default=None, sa_column=Column(Text))
    impression: str | None = Field(default=None, sa_column=Column(Text))
    indication: str | None = Field(default=None, sa_column=Column(Text))
    comparison: str | None = Field(default=None, sa_column=Column(Text))
    text_sha256: str = Field(index=True, max_length=64)


class Reviewer(SQLModel, table=True):
    """A person who signs in: a local account (argon2 password hash) or an OIDC subject."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=128)
    role: ReviewerRole = Field(default=ReviewerRole.reviewer, max_length=16)
    password_hash: str | None = Field(default=None, max_length=255)  # argon2id, never the password
    oidc_subject: str | None = Field(default=None, unique=True, max_length=255)  # st.user "sub"/email
    disabled: bool = False  # a disabled account cannot sign in or write; its history stays
    created_at: datetime = Field(default_factory=utcnow)


class Finding(SQLModel, table=True):
    # the two covering indexes serve the Data page's per-category and per-extractor counts
    # without reading 500k wide rows
    __table_args__ = (Index("ix_finding_report_category", "report_id", "category"),
                      Index("ix_finding_category_presence", "category", "presence"),
                      Index("ix_finding_extractor_presence", "extractor", "extractor_version",
                            "presence"))

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True, ondelete="CASCADE")
    category: str = Field(index=True, max_length=64)  # id from pipeline/resources/vocabulary.yaml
    presence: Presence = Field(max_length=16)
    severity: Severity | None = Field(default=None, max_length=16)
    side: Side | None = Field(default=None, max_length=16)
    region: str | None = Field(default=None, max_length=32)
    evidence_start: int | None = None  # character offsets into Report.text
    evidence_end: int | None = None
    evidence_text: str | None = Field(default=None, sa_column=Column(Text))  # == Report.text[start:end]
    extractor: str = Field(max_length=32)  # rules | llm | human
    extractor_version: str = Field(default="", max_length=160)  # "rules-1.0" or "gpt_ie_v1:<model>"
    prompt_version: str | None = Field(default=None, max_length=64)
    model_name: str | None = Field(default=None, max_length=160)
    status: FindingStatus = Field(default=FindingStatus.proposed, index=True, max_length=16)
    reviewer_id: int | None = Field(default=None, foreign_key="reviewer.id")
    version: int = Field(default=1)  # optimistic locking: bumped on every write
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class KnowledgeEntry(SQLModel, table=True):
    """IKI: what a category (optionally a severity/location subclass) looks like on the film."""

    __table_args__ = (UniqueConstraint("category", "subclass"),)

    id: int | None = Field(default=None, primary_key=True)
    category: str = Field(index=True, max_length=64)
    subclass: str = Field(default="", max_length=64)  # "" for the category itself, e.g. "severity:severe"
    explanation: str = Field(sa_column=Column(Text, nullable=False))
    source: KnowledgeSource = Field(default=KnowledgeSource.written, max_length=16)
    status: KnowledgeStatus = Field(default=KnowledgeStatus.draft, max_length=16)
    reviewer_id: int | None = Field(default=None, foreign_key="reviewer.id")
    version: int = Field(default=1)
    updated_at: datetime = Field(default_factory=utcnow)


class Assignment(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("reviewer_id", "report_id"),)

    id: int | None = Field(default=None, primary_key=True)
    reviewer_id: int = Field(foreign_key="reviewer.id", index=True)
    report_id: int = Field(foreign_key="report.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None


class ReviewAnswer(SQLModel, table=True):
    """One reviewer's own answer on one finding of a report (blind double review).

    ``finding_id`` is the extractor's proposal answered (accepted as is, edited, rejected), or
    NULL for a finding the reviewer added. The fields hold the reviewer's version of the
    triplet; the Finding row itself stays the machine's proposal.
    """

    __table_args__ = (UniqueConstraint("finding_id", "reviewer_id"),
                      Index("ix_reviewanswer_report_reviewer", "report_id", "reviewer_id"))

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", ondelete="CASCADE")
    finding_id: int | None = Field(default=None, foreign_key="finding.id", index=True,
                                   ondelete="CASCADE")
    reviewer_id: int = Field(foreign_key="reviewer.id", index=True)
    status: FindingStatus = Field(max_length=16)  # accepted | edited | rejected | added
    category: str = Field(max_length=64)
    presence: Presence = Field(max_length=16)
    severity: Severity | None = Field(default=None, max_length=16)
    side: Side | None = Field(default=None, max_length=16)
    region: str | None = Field(default=None, max_length=32)
    evidence_start: int | None = None
    evidence_end: int | None = None
    evidence_text: str | None = Field(default=None, sa_column=Column(Text))
    version: int = Field(default=1)  # optimistic locking, as Finding.version
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class Settlement(SQLModel, table=True):
    """Where a report's curated label stands: settled on one reviewer's answers, or disputed.

    ``answer_reviewer_id`` names whose answers are the settled label: the single reviewer's,
    the first of two agreeing reviewers', or (adjudicated) the picked reviewer's or the
    adjudicator's own. No row: not every assigned reviewer has finished yet.
    """

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", unique=True, ondelete="CASCADE")
    state: str = Field(index=True, max_length=16)  # settled | disputed
    how: str | None = Field(default=None, max_length=16)  # single | agreed | adjudicated
    answer_reviewer_id: int | None = Field(default=None, foreign_key="reviewer.id")
    adjudicator_id: int | None = Field(default=None, foreign_key="reviewer.id")
    version: int = Field(default=1)
    updated_at: datetime = Field(default_factory=utcnow, index=True)


class ReviewEvent(SQLModel, table=True):
    """Append-only audit log: enough to see who changed what, and to undo it."""

    id: int | None = Field(default=None, primary_key=True)
    reviewer_id: int | None = Field(default=None, foreign_key="reviewer.id", index=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    entity: str = Field(max_length=32)  # answer | settlement | reviewer | assignment | knowledge | finding
    entity_id: int = Field(index=True)
    action: str = Field(max_length=16)  # accept | edit | reject | add | undo | ...
    before_json: str | None = Field(default=None, sa_column=Column(Text))
    after_json: str | None = Field(default=None, sa_column=Column(Text))


class TrainingRun(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=128)
    config_json: str = Field(sa_column=Column(Text, nullable=False))
    snapshot_sha256: str = Field(max_length=64)  # hash of the label snapshot the run trained on
    metrics_json: str | None = Field(default=None, sa_column=Column(Text))
    checkpoint_path: str | None = None
    status: str = Field(default="running", max_length=16)
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class EmbeddingIndex(SQLModel, table=True):
    """One FAISS index of a run (``python -m pipeline.index``): its vectors' kind, where it
    lies, the index type chosen, and what it was built from (for the stale check)."""

    id: int | None = Field(default=None, primary_key=True)
    training_run_id: int | None = Field(default=None, foreign_key="trainingrun.id")
    kind: str = Field(max_length=16)  # image | label
    path: str  # the index folder (runs/NAME/index)
    dim: int
    count: int  # vectors held now (incremental adds included)
    created_at: datetime = Field(default_factory=utcnow)
    # the index choice (flat | ivf, nlist, nprobe, measured recall@10) as JSON
    spec_json: str | None = Field(default=None, sa_column=Column(Text))
    checkpoint_sha256: str | None = Field(default=None, max_length=64)  # weights it embedded with
    snapshot_sha256: str | None = Field(default=None, max_length=64)  # label snapshot at build/update
    updated_at: datetime | None = None  # last incremental add


class IngestError(SQLModel, table=True):
    """One row per bad item: the run goes on, the error stays visible until it is resolved."""

    id: int | None = Field(default=None, primary_key=True)
    dataset: str = Field(index=True, max_length=64)
    item: str  # source-relative reference with identifiers pseudonymised
    message: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    # study_key of the study the error is about; None for a record that names no study (an
    # unreadable file, row or archive member)
    subject_key: str | None = Field(default=None, index=True, max_length=64)
    # set when a later run stores that study whole: the error no longer holds
    resolved_at: datetime | None = None


class LLMCall(SQLModel, table=True):
    """Response cache and usage ledger of the LLM extractor, keyed by (prompt, model, report)."""

    id: int | None = Field(default=None, primary_key=True)
    cache_key: str = Field(unique=True, index=True, max_length=64)  # sha256(prompt_version, model, report hash)
    prompt_version: str = Field(max_length=64)
    model_name: str = Field(max_length=160)
    report_sha256: str = Field(max_length=64)
    response_json: str = Field(sa_column=Column(Text, nullable=False))
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)


class ReportExtraction(SQLModel, table=True):
    """Marks a report as done by one extractor version, findings or none (a normal report)."""

    __table_args__ = (UniqueConstraint("report_id", "extractor", "extractor_version"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True, ondelete="CASCADE")
    extractor: str = Field(max_length=32)
    extractor_version: str = Field(max_length=160)
    n_findings: int = 0
    created_at: datetime = Field(default_factory=utcnow)


class ExtractionError(SQLModel, table=True):
    """A report the extractor could not handle (bad JSON, a quote not in the report, a timeout)."""

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="report.id", index=True, ondelete="CASCADE")
    extractor: str = Field(max_length=32)
    extractor_version: str = Field(default="", max_length=160)  # "rules-1.0" or "gpt_ie_v1:<model>"
    message: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
