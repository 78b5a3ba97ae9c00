"""Verbatim evidence: the one rule for where a finding's quote lies in its report.

Every stored finding carries an evidence span that is a verbatim slice of its report,
``Report.text[evidence_start:evidence_end] == evidence_text``. Two functions hold the rule and
every writer uses them:

- ``locate_quote(text, quote)``: where a quote someone gave us lies in the report: the LLM's
  answer check (``pipeline.extract.llm.prompt``) and a reviewer's edit / add (the write functions
  of ``db.queries.review``, so the rule holds at the write whatever the page sends);
- ``check_span(text, start, end, quote)``: whether a span to be stored is that verbatim slice:
  every extractor's findings before they are stored (``pipeline.extract.run``, rules and LLM
  alike, and again in ``db.queries.extraction``), and a reviewer's span when one is given.

Location is whitespace-insensitive: a run of whitespace in the quote matches any run of
whitespace in the report (an exact match is tried first). Why: whitespace is layout, not words.
A model re-flows line breaks when it quotes ("pleural\\neffusion" comes back as "pleural
effusion"), and a reviewer copies a quote from a display that re-wraps the report or pastes it
with a stray space or newline; refusing those would make a reviewer retype what they can see is
the same text, and would drop correct LLM findings. Nothing else is forgiven (case, punctuation,
spelling: those change what the report says). The *stored* span is always the exact report slice
``text[start:end]``, never the quote as given, so the stored evidence stays verbatim and
``check_span`` stays exact. Where a quote occurs twice, the first occurrence wins: a sentence
repeated in FINDINGS and IMPRESSION states the same finding.
"""

from __future__ import annotations

import re

__all__ = ["check_span", "locate_quote"]


def locate_quote(text: str, quote: str | None) -> tuple[int, int] | None:
    """(start, end) of the first occurrence of ``quote`` in ``text``, whitespace-insensitive;
    None when the quote is blank or not in the text. ``text[start:end]`` is what to store."""
    words = (quote or "").split()
    if not words:
        return None
    exact = text.find(quote.strip())
    if exact >= 0:
        return exact, exact + len(quote.strip())
    m = re.search(r"\s+".join(map(re.escape, words)), text)
    return (m.start(), m.end()) if m else None


def check_span(text: str, start: int | None, end: int | None, quote: str | None) -> bool:
    """True when ``quote`` is a non-blank slice ``text[start:end]``, character for character."""
    return (isinstance(start, int) and isinstance(end, int) and bool(quote and quote.strip())
            and 0 <= start < end <= len(text) and text[start:end] == quote)
