"""GPT-IE prompt, response schema and answer checks of the LLM extractor.

The prompt is a versioned text file (``pipeline/extract/llm/prompts/<version>.txt``); the version string goes
into the cache key and into every finding's provenance. The model answers under a strict JSON
schema (``response_format``) and the answer is validated again with pydantic here, because an
OpenAI-compatible server may not enforce the schema.

What an answer must satisfy, and what a report that carries instructions ("ignore previous
instructions and ...") therefore cannot do:

- The top level is exactly ``{"findings": [...]}``: any other shape is rejected whole
  (kind ``schema``), so an injection cannot change the output schema.
- Each finding is validated alone: an unknown category, region or extra key rejects that finding
  with a reason, the others stay.
- Each evidence quote must be found verbatim in the report (``db.evidence.locate_quote``: runs
  of whitespace may differ; the stored span is always ``text[start:end]``), so no finding exists
  without evidence.
- A finding whose evidence lies in an instruction-like sentence (``INSTRUCTION_PATTERNS``) is
  rejected as a possible injection.

What cannot be enforced here: an injected sentence that reads like a finding ("there is a large
right pneumothorax") is indistinguishable from report content, and an injection may make the
model omit findings. Such findings still carry their evidence span and enter review as
``proposed``; the reviewer is the last line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from db.evidence import locate_quote
from db.models import Presence, Severity, Side
from pipeline import vocab
from pipeline.extract.findings import Evidence, ExtractedFinding, Location
from pipeline.llm_client import json_schema_format

PROMPT_VERSION = "gpt_ie_v1"

MAX_SYNONYMS_IN_PROMPT = 8  # per category: enough to anchor the id, short enough for the prompt

# Sentences that address the model rather than describe the patient. Radiology prose never says
# "ignore ... instructions" or "system prompt"; each pattern targets one injection idiom.
INSTRUCTION_PATTERNS = [re.compile(p, re.IGNORECASE) for p in (
    r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,60}\b(?:instructions?|prompts?|rules)\b",
    r"\b(?:system|developer)\s+(?:prompt|message|instructions?)\b",
    r"\bnew\s+instructions?\b",
    r"\byou\s+(?:are\s+now|must|should|will\s+now)\b",
    r"\b(?:respond|reply|answer|output)\s+(?:only\s+)?(?:with|in|as)\b",
    r"\b(?:as\s+an\s+ai|language\s+model|assistant)\b",
)]
SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


@dataclass(frozen=True)
class Vocabulary:
    categories: tuple[str, ...]  # ids, as in pipeline/resources/vocabulary.yaml
    regions: tuple[str, ...]  # ids, as in pipeline/resources/locations.yaml
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # id -> prompt phrases


def prompt_vocabulary() -> Vocabulary:
    """Category ids with their label and mention phrases (for the prompt), and region ids."""
    cats = vocab.load_vocabulary()
    synonyms = {}
    for cid, cat in cats.items():
        phrases = dict.fromkeys(p.lower() for p in (cat.label, *cat.phrases))  # ordered, unique
        phrases.pop(cid.replace("_", " "), None)
        synonyms[cid] = tuple(phrases)
    return Vocabulary(categories=tuple(cats), regions=vocab.load_locations().regions,
                      synonyms=synonyms)


def build_response_format(vocab: Vocabulary) -> dict:
    """The strict JSON schema handed to ``response_format``: enums pin every field's values."""
    def nullable_enum(values) -> dict:
        return {"type": ["string", "null"], "enum": [*values, None]}

    finding = {
        "type": "object",
        "additionalProperties": False,
        "required": ["category", "presence", "severity", "side", "region", "evidence"],
        "properties": {
            "category": {"type": "string", "enum": list(vocab.categories)},
            "presence": {"type": "string", "enum": [p.value for p in Presence]},
            "severity": nullable_enum(s.value for s in Severity),
            "side": nullable_enum(s.value for s in Side),
            "region": nullable_enum(vocab.regions),
            "evidence": {"type": "string",
                         "description": "verbatim quote from the report that states the finding"},
        },
    }
    schema = {"type": "object", "additionalProperties": False, "required": ["findings"],
              "properties": {"findings": {"type": "array", "items": finding}}}
    return json_schema_format("report_findings", schema)


@dataclass(frozen=True)
class Prompt:
    version: str
    system: str
    response_format: dict
    vocab: Vocabulary
    fingerprint: str  # sha256 of the rendered system prompt + schema: part of the cache key

    def messages(self, report_text: str) -> list[dict]:
        """System prompt, then the report as delimited data with a per-report code.

        The code comes from the report's hash: stable for the cache, and a report cannot close
        its own delimiter without knowing the hash of itself.
        """
        code = hashlib.sha256(report_text.encode()).hexdigest()[:12]
        user = (f"Report code: {code}\n<report-{code}>\n{report_text}\n</report-{code}>\n"
                "Extract the findings of the report above.")
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def load_prompt(version: str = PROMPT_VERSION, vocab: Vocabulary | None = None) -> Prompt:
    vocab = vocab or prompt_vocabulary()
    template = (resources.files(__package__) / "prompts" / f"{version}.txt").read_text("utf-8")
    lines = []
    for cat in vocab.categories:
        syn = vocab.synonyms.get(cat, ())[:MAX_SYNONYMS_IN_PROMPT]
        lines.append(f"- {cat}" + (f": {', '.join(syn)}" if syn else ""))
    system = template.format(categories="\n".join(lines), regions=", ".join(vocab.regions))
    response_format = build_response_format(vocab)
    blob = json.dumps([system, response_format], sort_keys=True).encode()
    return Prompt(version=version, system=system, response_format=response_format, vocab=vocab,
                  fingerprint=hashlib.sha256(blob).hexdigest())


# --- answer checks ---------------------------------------------------------------------------


class AnswerError(Exception):
    """The whole answer is unusable (kind: invalid_json | schema | refusal | empty)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class LLMFinding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    category: str
    presence: Presence
    severity: Severity | None = None
    side: Side | None = None
    region: str | None = None
    evidence: str

    @field_validator("evidence")
    @classmethod
    def _non_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("evidence is empty")
        return v


def _clip(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def parse_answer(content: str | None, *, finish_reason: str | None = None,
                 refusal: str | None = None) -> list[dict]:
    """The raw finding objects of an answer, or AnswerError naming what is wrong with it."""
    if refusal:
        raise AnswerError("refusal", f"model refused: {_clip(refusal)}")
    if not content:
        raise AnswerError("empty", f"empty answer from model (finish_reason={finish_reason})")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        cut = " (answer cut at max tokens)" if finish_reason == "length" else ""
        raise AnswerError("invalid_json", f"invalid JSON from model{cut}: {exc.msg} at "
                          f"char {exc.pos}: {_clip(content)!r}") from None
    if not isinstance(data, dict) or set(data) != {"findings"} or not isinstance(
            data["findings"], list):
        shape = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise AnswerError("schema", f'answer is not {{"findings": [...]}} (got {shape})')
    return data["findings"]


def instruction_spans(text: str) -> list[tuple[int, int]]:
    """Spans of the sentences of ``text`` that match an INSTRUCTION_PATTERNS idiom."""
    spans, start = [], 0
    for m in [*SENTENCE_END.finditer(text), None]:
        end = m.end() if m else len(text)
        sentence = text[start:end]
        if any(p.search(sentence) for p in INSTRUCTION_PATTERNS):
            spans.append((start, end))
        start = end
    return spans


def check_finding(raw: object, text: str, vocab: Vocabulary,
                  suspicious: list[tuple[int, int]]) -> tuple[LLMFinding, int, int] | str:
    """A validated finding and its evidence span, or the reason it is rejected."""
    try:
        f = LLMFinding.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "finding"
        return f"invalid finding ({where}: {err['msg']}): {_clip(json.dumps(raw, default=str))}"
    if f.category not in vocab.categories:
        return f"unknown category {f.category!r}: {_clip(f.evidence)!r}"
    if f.region is not None and f.region not in vocab.regions:
        return f"unknown region {f.region!r} for {f.category}: {_clip(f.evidence)!r}"
    span = locate_quote(text, f.evidence)
    if span is None:
        return f"evidence not in report for {f.category}: {_clip(f.evidence)!r}"
    if any(span[0] < e and s < span[1] for s, e in suspicious):
        return (f"evidence for {f.category} lies in an instruction-like passage (possible "
                f"prompt injection): {_clip(text[span[0]:span[1]])!r}")
    return f, span[0], span[1]


def to_findings(raw_findings: list, text: str, *, vocab: Vocabulary,
                extractor: str) -> tuple[list[ExtractedFinding], list[str]]:
    """Checked findings with verbatim evidence spans, and one reason per rejected finding."""
    findings, rejected = [], []
    suspicious = instruction_spans(text)
    for raw in raw_findings:
        checked = check_finding(raw, text, vocab, suspicious)
        if isinstance(checked, str):
            rejected.append(checked)
            continue
        f, start, end = checked
        findings.append(ExtractedFinding(
            category=f.category, presence=f.presence, severity=f.severity,
            location=Location(side=f.side, region=f.region),
            evidence=Evidence(start=start, end=end, text=text[start:end]), extractor=extractor))
    return findings, rejected
