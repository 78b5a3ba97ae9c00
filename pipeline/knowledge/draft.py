"""LLM drafts of IKI explanations for subclasses the dictionary lacks.

MedFILIP leaves severity/location-specific knowledge as future work; our dictionary covers the
subclasses whose appearance differs most. For every other (category, subclass) the stored
findings actually use ("severity:mild" pleural effusion, "region:apical" nodule...), an LLM
drafts an explanation; it is stored as source ``llm-draft``, status ``draft``, and stays out of
training labels until a reviewer approves it on the Knowledge page. ``sync`` never touches drafts.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, replace
from importlib import resources

from db import queries
from db.engine import session_scope
from db.models import KnowledgeSource, KnowledgeStatus
from pipeline import vocab
from pipeline.llm_client import (
    CallFailed,
    RetryPolicy,
    complete,
    json_schema_format,
    make_client,
    structured_request,
)
from pipeline.settings import Settings

PROMPT_VERSION = "iki_draft_v1"
MAX_WORDS = 120  # the prompt asks for <= 80; longer answers are rejected, not truncated
SCHEMA = {"type": "object", "additionalProperties": False, "required": ["explanation"],
          "properties": {"explanation": {"type": "string"}}}
DRAFT_ACTION = "llm-draft"


@dataclass(frozen=True)
class DraftOutcome:
    category: str
    subclass: str
    explanation: str | None = None
    error: str | None = None  # specific reason the draft was not stored


def _system_prompt() -> str:
    """The versioned prompt, with three of our written explanations as style examples."""
    iki = vocab.load_iki()
    examples = [f'- {cat} ({sub}): {iki[cat][sub]}' for cat, sub in
                (("pleural_effusion", ""), ("pneumothorax", ""), ("atelectasis", "type:plate-like"))
                if sub in iki.get(cat, {})]
    text = (resources.files(__package__) / "prompts" / f"{PROMPT_VERSION}.txt").read_text()
    return text.format(examples="\n".join(examples))


def _user_prompt(category: str, subclass: str) -> str:
    cat = vocab.load_vocabulary()[category]
    base = vocab.load_iki().get(category, {}).get("", "")
    kind, _, value = subclass.partition(":")
    return (f"Finding: {cat.label} ({category}). Subclass: {kind} = {value}.\n"
            f"General appearance of the finding: {base}\n"
            f"Describe how a {value} {cat.label.lower()} looks on a frontal chest radiograph, "
            f"as distinct from the general appearance.")


def parse_draft(content: str | None) -> str:
    """The explanation of an answer, or ValueError with the reason it is unusable."""
    try:
        answer = json.loads(content or "")
    except ValueError as exc:
        raise ValueError(f"invalid JSON from model: {exc}") from None
    text = answer.get("explanation") if isinstance(answer, dict) else None
    if not isinstance(text, str):
        raise ValueError("answer has no string 'explanation'")
    text = " ".join(text.split())
    if not text:
        raise ValueError("empty explanation")
    if len(text.split()) > MAX_WORDS:
        raise ValueError(f"explanation of {len(text.split())} words (limit {MAX_WORDS})")
    return text


async def _draft_all(keys: list[tuple[str, str]], settings: Settings, model: str,
                     policy: RetryPolicy) -> list[DraftOutcome]:
    client = make_client(base_url=settings.openai_base_url, api_key=settings.openai_api_key)
    gate = asyncio.Semaphore(settings.llm_concurrency)
    system = _system_prompt()

    async def one(category: str, subclass: str) -> DraftOutcome:
        request = structured_request(
            model, [{"role": "system", "content": system},
                    {"role": "user", "content": _user_prompt(category, subclass)}],
            json_schema_format("iki_entry", SCHEMA))
        async with gate:
            try:
                answer = await complete(client, request, timeout_s=settings.llm_timeout_s,
                                        policy=policy)
                return DraftOutcome(category, subclass, explanation=parse_draft(answer.content))
            except (CallFailed, ValueError) as exc:
                return DraftOutcome(category, subclass, error=str(exc))

    try:
        return list(await asyncio.gather(*(one(c, s) for c, s in keys)))
    finally:
        await client.close()


def draft_missing(db_url: str, settings: Settings, *, model: str | None = None,
                  limit: int | None = None, policy: RetryPolicy | None = None) -> list[DraftOutcome]:
    """Draft every used-but-unexplained subclass; store each good draft as its own row."""
    with session_scope(db_url) as session:
        have = queries.get_knowledge_entries(session=session)
        known = set(vocab.category_ids())
        keys = [k for k in queries.list_subclass_keys_in_use(session=session)
                if k not in have and k[0] in known][:limit]
    if not keys:
        return []
    model = model or settings.openai_model
    outcomes = asyncio.run(_draft_all(keys, settings, model,
                                      policy or RetryPolicy(max_retries=settings.llm_max_retries)))
    with session_scope(db_url) as session:
        return [_store(o, session=session) for o in outcomes]


def _store(o: DraftOutcome, *, session) -> DraftOutcome:
    """Store one good draft; an entry someone added meanwhile is kept and the draft dropped."""
    if o.explanation is None:
        return o
    entry = queries.create_knowledge_entry(
        o.category, o.subclass, o.explanation, source=KnowledgeSource.llm_draft,
        status=KnowledgeStatus.draft, action=DRAFT_ACTION, session=session)
    if entry is None:
        return replace(o, explanation=None, error="an entry was added meanwhile; it is kept and "
                       "this draft dropped")
    return o
