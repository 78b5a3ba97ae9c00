"""Typos of lexicon words, corrected before matching: "atelectsis", "pnemothorax", "efussion".

A bounded edit-distance look-up (symspellpy's SymSpell, over the lexicons' own words), tried only
on words the report spells in no known way: neither a lexicon word (American or British form),
nor an English word (symspellpy's frequency list), nor a ``known_words`` entry of
``resources/spelling.yaml``, whose header gives the bounds. Most reports have no such word and
cost one set difference; a word's answer is cached, so a corpus pays each look-up once.

The corrected text has other offsets than the report: ``Corrected.original`` maps a position
back, so that evidence stays a verbatim slice of the report as written.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

from symspellpy import SymSpell, Verbosity

from pipeline import vocab

_ESCAPE_RE = re.compile(r"\\[a-zA-Z]")  # "\s" in a lexicon regex is no letter "s"
_WORD_RE = re.compile(r"[a-z]+")
_DOUBLED_RE = re.compile(r"(.)\1+")
# ASCII punctuation and digits to spaces: words of letters come out of one str.split (a word
# with any other character is simply not known, and gets the full look below).
_SEPARATORS = str.maketrans({c: " " for c in string.punctuation + string.digits})
ENGLISH_WORDS = "frequency_dictionary_en_82_765.txt"  # shipped inside the symspellpy package


@cache
def english_words() -> frozenset[str]:
    text = resources.files("symspellpy").joinpath(ENGLISH_WORDS).read_text(encoding="utf-8")
    return frozenset(line.split(" ", 1)[0] for line in text.splitlines() if line)


def lexicon_words(phrases: Iterable[str]) -> set[str]:
    """Lower-case words of lexicon phrases and regexes (regex escapes removed first)."""
    words: set[str] = set()
    for p in phrases:
        words.update(_WORD_RE.findall(_ESCAPE_RE.sub(" ", p.lower())))
    return words


def _undoubled(word: str) -> str:
    """``word`` with every run of one letter cut to one: "efussion", "effusion" -> "efusion"."""
    return _DOUBLED_RE.sub(r"\1", word)


@dataclass(frozen=True)
class Corrected:
    """A report with its typos corrected, and the way back to the report's offsets."""

    text: str
    lower: str
    starts: tuple[int, ...]  # corrected-text offset just after each replaced word
    shifts: tuple[int, ...]  # original minus corrected offset from that point on

    def original(self, pos: int) -> int:
        """The report offset of corrected-text offset ``pos`` (a word boundary)."""
        i = bisect_right(self.starts, pos)
        return pos + (self.shifts[i - 1] if i else 0)


class TypoCorrector:
    def __init__(self, lexicon: set[str]) -> None:
        cfg = vocab.load_spelling()
        self._cfg = cfg
        self._known = english_words() | cfg.known_words | lexicon
        self._token_re = re.compile(rf"(?<![a-z])[a-z]{{{cfg.min_length},}}(?![a-z])")
        # Candidates are looked up one edit further than allowed, for the doubled-letter slips.
        self._reach = cfg.max_distance + (1 if cfg.doubled_letters_free else 0)
        self._symspell = SymSpell(max_dictionary_edit_distance=self._reach)
        for word in lexicon:
            if len(word) >= cfg.min_length:
                self._symspell.create_dictionary_entry(word, 1)
        self.fix = lru_cache(maxsize=1 << 16)(self._fix)

    def _fix(self, word: str) -> str | None:
        """The one lexicon word ``word`` is a typo of, or None."""
        cfg = self._cfg
        near = self._symspell.lookup(word, Verbosity.ALL, max_edit_distance=self._reach)
        ok = [s for s in near if s.term[0] == word[0] and (
            s.distance <= cfg.max_distance
            or (cfg.doubled_letters_free and _undoubled(s.term) == _undoubled(word)))]
        if not ok:
            return None
        best = min(s.distance for s in ok)
        terms = {s.term for s in ok if s.distance == best}
        return terms.pop() if len(terms) == 1 else None

    def correct(self, text: str, lower: str) -> Corrected | None:
        """``text`` with its typos corrected, or None when it has none (the common case)."""
        n = self._cfg.min_length
        unknown = set(lower.translate(_SEPARATORS).split()) - self._known
        if not any(len(w) >= n for w in unknown):
            return None  # one C-level split and a set difference for most reports
        parts, low, starts, shifts = [], [], [], []
        last = shift = 0
        for m in self._token_re.finditer(lower):
            word = m.group()
            if word in self._known or (fixed := self.fix(word)) is None:
                continue
            orig = text[m.start():m.end()]
            cased = fixed.upper() if orig.isupper() else fixed.capitalize() if orig[0].isupper() \
                else fixed
            parts += [text[last:m.start()], cased]
            low += [lower[last:m.start()], fixed]
            shift += len(word) - len(fixed)
            starts.append(m.end() - shift)  # where the corrected word ends in the new text
            shifts.append(shift)
            last = m.end()
        if not parts:
            return None
        parts.append(text[last:])
        low.append(lower[last:])
        return Corrected("".join(parts), "".join(low), tuple(starts), tuple(shifts))
