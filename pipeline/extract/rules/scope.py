"""Where a cue's scope ends: report sections, sentences and clauses (NegEx / ConText rules).

Sections come from the one section grammar (``pipeline.sections``) that the ingest uses too.

The rules themselves are documented next to the cues in ``resources/triggers.yaml``; this module
turns a report into sorted boundary offsets and decides each mention's presence with ``bisect``
over them, so the cost per mention is a few list look-ups.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from db.models import Presence
from pipeline import sections
from pipeline.extract.rules.match import (
    HYPO,
    NEG_B,
    NEG_F,
    PSEUDO,
    TERM,
    UNC_B,
    UNC_BI,
    UNC_F,
)

# Sentence ends: . ! ? followed by space or end (so "1.5 cm" and "5.2" stay whole), or a newline.
# A "?" that stands before a word rather than after one asks about what follows ("? pneumonia").
SENTENCE_END_RE = re.compile(r"(?:[.!]|(?<=[^\s(])\?)(?=\s|$)|\n")
CLAUSE_END_RE = re.compile(r"[;:]")
# A ":" that only introduces a one-word answer about what stands left of it ("Pneumothorax:
# none.", "Effusion: negative") ends neither a sentence nor a clause: the answer is a backward cue.
ANSWER_RE = re.compile(r"[ \t]*(?:none|negative|absent|not seen)[ \t]*(?:[.;\n]|$)")
COMMA_RE = re.compile(r",")


def skipped_spans(text: str, headers: list[sections.Header]) -> list[tuple[int, int]]:
    """Spans of the context sections, whose mentions do not count (indication, comparison...)."""
    return sections.context_spans(sections.split_sections(text, headers))


@dataclass
class Layout:
    """Sorted boundary offsets of one report (all exclusive ends / inclusive starts)."""

    sentence_ends: list[int]  # offset just after each sentence's last character
    clause_breaks: list[int]  # every sentence end, ";" ":", termination cue and ", <cue>"
    cues: list[tuple[int, int, int]]  # (start, end, flags) of real cues, by start
    cue_starts: list[int]
    lower: str  # the lower-cased report text
    labels: list[tuple[int, int]]  # template field labels (start, just after the colon)
    label_starts: list[int]


def layout(text: str, lower: str, cues: list[tuple[int, int, int]],
           headers: list[sections.Header]) -> Layout:
    sentence_ends = [m.end() for m in SENTENCE_END_RE.finditer(text)]
    # A section header ends the "sentence" before it and is one of its own ("... infiltrate
    # FINDINGS: Left basilar opacity": neither sentence runs into the other).
    sentence_ends += [p for h in headers for p in (h.start, h.end)]
    sentence_ends.append(len(text))
    sentence_ends.sort()
    # A template field label's colon ends nothing: "Pleural effusion: Moderate right." is one
    # statement about the effusion.
    labels = sections.field_labels(text, headers)
    label_ends = {e for _, e in labels}
    real = [c for c in cues if not c[2] & PSEUDO]
    breaks = list(sentence_ends)
    breaks += [m.end() for m in CLAUSE_END_RE.finditer(lower)
               if m.end() not in label_ends and not ANSWER_RE.match(lower, m.end())]
    breaks += [s for s, _, f in real if f & TERM]
    cue_starts = [c[0] for c in real]
    for m in COMMA_RE.finditer(lower):  # ", possible effusion": the cue opens a new clause
        i = bisect_left(cue_starts, m.end())
        if i < len(real) and not lower[m.end():real[i][0]].strip() and not real[i][2] & TERM:
            breaks.append(m.end())
    breaks.sort()
    return Layout(sentence_ends, breaks, real, cue_starts, lower, labels, [s for s, _ in labels])


def label_of(lay: Layout, start: int, end: int) -> tuple[int, int] | None:
    """The template field label [start, end) stands in ("Pleural effusion:"), if any."""
    i = bisect_right(lay.label_starts, start)
    if i and end < lay.labels[i - 1][1]:
        return lay.labels[i - 1]
    return None


def clause_of(lay: Layout, start: int, end: int) -> tuple[int, int]:
    """The clause around [start, end): last break at or before start, first break at or after end."""
    b = lay.clause_breaks
    i = bisect_right(b, start)
    lo = b[i - 1] if i else 0
    j = bisect_left(b, end)
    hi = b[j] if j < len(b) else end
    return lo, hi


def sentence_of(lay: Layout, text: str, start: int) -> tuple[int, int]:
    """The sentence span around ``start``, trimmed of surrounding whitespace."""
    ends = lay.sentence_ends
    i = bisect_right(ends, start)
    lo = ends[i - 1] if i else 0
    hi = ends[i] if i < len(ends) else len(text)
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return lo, hi


def sentence_index(lay: Layout, start: int) -> int:
    """The index of the sentence ``start`` lies in (0 for the first)."""
    return bisect_right(lay.sentence_ends, start)


def presence_of(lay: Layout, start: int, end: int, kind: str) -> Presence | None:
    """Presence of one mention from the cues in its clause (rules: triggers.yaml header);
    None when only a recommendation asks about it ("correlate clinically for infection")."""
    if kind == "absent":
        return Presence.absent
    lo, hi = clause_of(lay, start, end)
    cues, starts = lay.cues, lay.cue_starts
    label = label_of(lay, start, end)
    answer = label[1] if label else hi  # a template answer governs its label's mentions
    fwd_neg = unc = bwd_neg = hypo = False
    for k in range(bisect_left(starts, lo), len(cues)):
        c_start, c_end, flags = cues[k]
        if c_start >= hi:
            break
        if c_start < end:  # before the mention, or inside it ("heart may be enlarged")
            fwd_neg = fwd_neg or bool(flags & NEG_F)
            hedged = bool(flags & UNC_F) or (
                bool(flags & UNC_BI) and "," not in lay.lower[c_end:start])
        elif c_start >= answer:  # "Pneumothorax: No." / "Consolidation: possible, left"
            bwd_neg = bwd_neg or bool(flags & (NEG_B | NEG_F))
            hedged = bool(flags & (UNC_B | UNC_F | UNC_BI))
        else:
            bwd_neg = bwd_neg or bool(flags & NEG_B)
            hedged = bool(flags & UNC_B) or (
                bool(flags & UNC_BI) and "," not in lay.lower[end:c_start])
        if hedged and flags & HYPO and c_start < end:
            hypo = True
        elif hedged:
            unc = True
    if fwd_neg:  # "no opacity to suggest pneumonia": negation governs its clause to the right
        return Presence.absent
    if unc:  # "cannot be excluded": uncertainty beats negation (CheXpert)
        return Presence.uncertain
    if hypo:
        return None
    if bwd_neg:
        return Presence.absent
    return Presence.uncertain if kind == "weak" else Presence.present
