"""The report-section grammar, one for every stage: where a header stands and where its section ends.

Used by the ingest's section parser (``pipeline.ingest.sources.parse_report``) and by the rule
extractor, which ignores mentions in context sections (indication, comparison, technique, ...).
The header names live in ``resources/sections.yaml``; this module says how a header is written.

A known header name (any case) is a header when it stands at a line start or after a sentence
end (. ! ? ;) and is followed by
  * a colon: "FINDINGS:", "Clinical history:" (a capitalised name with a colon counts anywhere
    after a space: "Indication: cough Findings: ...", but "the findings: ..." does not);
  * a dash: "Findings - clear lungs", "IMPRESSION -- ...";
  * nothing but the line end: "Findings" on its own line;
  * a space, when the name stands out from the prose after it: the next word starts with a
    capital or a digit and is not itself in capitals after an all-caps name ("FINDINGS Left
    basilar opacity", "Impression 1. ...", but not "Findings suggest ...", "Comparison is
    made ...", nor "FINDINGS SUGGEST PNEUMONIA" in an all-caps report).
A section runs from its header to the next header. A template field label ("Pleural effusion:
Moderate right.") is no header: its answer is about it (``field_labels``). A context section (``image: false``) also ends
at a blank line or at a template field label at a line start ("Lungs: clear"), since a history
or a comparison is one short statement: what follows it is read. In a report with no image
section header at all, the last context section is one sentence long: the unlabelled text after
it is the findings ("COMPARISON: Yesterday. ETT tip 3 cm above the carina.").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from pipeline import vocab

# A template field label at a line start: "Lungs:", "Pleural effusion:", "Heart size:".
FIELD_LABEL_RE = re.compile(r"(?m)^[ \t]*[A-Za-z][A-Za-z /&()-]{1,40}?[ \t]*:")
# The same label after a sentence end or a header, in an inline template ("Heart: normal.
# Pneumothorax: none.", "FINDINGS: Pleural effusion: small."): up to four words, not a time.
INLINE_LABEL_RE = re.compile(
    r"(?<=[.;!?:])[ \t]+[A-Za-z][A-Za-z/&()-]*(?:[ \t]+[A-Za-z/&()-]+){0,3}[ \t]*:(?!\d)")
BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
_CONTENT_RE = re.compile(r"\S")
_SENTENCE_END_RE = re.compile(r"[.!?](?=\s|$)")
_SENTENCE_END = ".!?;"
_DASHES = ("-", "\u2013", "\u2014")  # hyphen, en dash, em dash


@dataclass(frozen=True)
class Header:
    start: int  # first character of the header name
    end: int  # just after the header (its colon or dash included)
    section: str  # section id of resources/sections.yaml ("findings", "indication", ...)


@dataclass(frozen=True)
class Section:
    name: str  # section id
    start: int  # the header's start
    body_start: int  # the header's end
    end: int  # exclusive
    image: bool  # describes the film (False: a context section)


@dataclass(frozen=True)
class _Grammar:
    regex: re.Pattern
    section_of: dict[str, str]  # normalised header name -> section id
    image: dict[str, bool]  # section id -> describes the film


@cache
def _grammar() -> _Grammar:
    section_of: dict[str, str] = {}
    image: dict[str, bool] = {}
    for sid, spec in vocab.load_sections().items():
        image[sid] = spec.image
        for name in spec.headers:
            section_of[vocab.normalise(name)] = sid
    # A trie prefers the longest name ("clinical history" over "history") and scans ~3x faster
    # than a plain alternation.
    regex = re.compile(
        r"(?<![\w/])(?P<name>" + vocab.trie_regex(list(section_of)) + r")(?:\s*\(s\))?(?![\w/])"
        r"(?P<punct>[ \t]*(?::|-{1,2}|\u2013|\u2014))?", re.IGNORECASE)
    return _Grammar(regex, section_of, image)


def _lead(text: str, start: int) -> tuple[bool, bool]:
    """(at a line start, after a sentence end) for a header candidate starting at ``start``."""
    i = start
    while i and text[i - 1] in " \t":
        i -= 1
    if i == 0 or text[i - 1] in "\r\n":
        return True, False
    return False, text[i - 1] in _SENTENCE_END


def _stands_out(text: str, name: str, end: int) -> bool:
    """No punctuation after the name: is it a header all the same (see the module docstring)?"""
    line_end = text.find("\n", end)
    rest = text[end: len(text) if line_end < 0 else line_end]
    if not rest.strip():
        return True  # alone on its line
    if not rest[:1].isspace():
        return False
    word = rest.split(None, 1)[0]
    if word[0].isdigit():
        return True
    if not word[0].isupper():
        return False
    return not (name.isupper() and word.isupper() and len(word) > 1)


def find_headers(text: str) -> list[Header]:
    """Every section header of ``text``, left to right."""
    g = _grammar()
    out = []
    for m in g.regex.finditer(text):
        name, punct = m.group("name"), (m.group("punct") or "").strip()
        line_start, after_sentence = _lead(text, m.start())
        if punct == ":":
            ok = line_start or after_sentence or (name[0].isupper() and m.start() > 0
                                                  and text[m.start() - 1].isspace())
        elif punct:
            ok = line_start or after_sentence
        else:
            ok = (line_start or after_sentence) and _stands_out(text, name, m.end())
        if ok:
            out.append(Header(m.start(), m.end(), g.section_of[vocab.normalise(name)]))
    return out


def split_sections(text: str, headers: list[Header] | None = None) -> list[Section]:
    """The sections of ``text`` in order (text before the first header belongs to none)."""
    headers = find_headers(text) if headers is None else headers
    if not headers:
        return []
    image = _grammar().image
    # With no FINDINGS/IMPRESSION header at all, the findings are the unlabelled text after the
    # last context section ("COMPARISON: Yesterday. ETT tip 3 cm above the carina. ...").
    unlabelled = not any(image[h.section] for h in headers)
    out = []
    for i, h in enumerate(headers):
        end = headers[i + 1].start if i + 1 < len(headers) else len(text)
        if not image[h.section] and unlabelled and i + 1 == len(headers):
            stop = _SENTENCE_END_RE.search(text, h.end, end)
            end = stop.end() if stop else end
        if not image[h.section]:
            body = _CONTENT_RE.search(text, h.end, end)  # "HISTORY:\n\nCough.": the body is "Cough."
            if body:
                for stop_re in (FIELD_LABEL_RE, BLANK_LINE_RE):
                    stop = stop_re.search(text, body.start(), end)
                    if stop:
                        end = stop.start()
        out.append(Section(h.section, h.start, h.end, end, image[h.section]))
    return out


def field_labels(text: str, headers: list[Header]) -> list[tuple[int, int]]:
    """(start, end just after the colon) of every template field label that is no section
    header, by start: "Pleural effusion: Moderate right.", "Devices: None.", "Lungs: Clear."."""
    header_ends = {h.end for h in headers}
    if text.count(":") <= sum(text[e - 1] == ":" for e in header_ends):
        return []  # every colon is a header's (as in Open-i): no label to look for
    spans = {(m.end() - len(m.group().lstrip()), m.end())
             for regex in (FIELD_LABEL_RE, INLINE_LABEL_RE)
             for m in regex.finditer(text) if m.end() not in header_ends}
    return sorted(spans)


def context_spans(sections: list[Section]) -> list[tuple[int, int]]:
    """(start, end) of the sections that do not describe the film, header included."""
    return [(s.start, s.end) for s in sections if not s.image]
