"""Compiled matchers of the rule extractor: mentions, cues and modifiers.

Each concept set (every category's phrases, every cue, every modifier word) becomes ONE compiled
regex, so that a report is scanned by a few C-level ``finditer`` passes instead of Python loops
over tokens. Literal phrases are folded into a character trie (``trie_regex``): the regex then
costs about one branch per character rather than one per phrase, and, being greedy, it prefers
the longest phrase at a position ("pleural effusions" over "pleural effusion" over "effusion").
What a match means is looked up afterwards in a dict keyed by the normalised matched text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache, lru_cache

from db.models import Severity, Side
from pipeline import vocab
from pipeline.vocab import normalise, spelling_variants, trie_regex


def _bounded(regex: str) -> str:
    return r"(?<![\w])(?:" + regex + r")(?![\w])"


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    category: str
    kind: str  # "strong" | "weak" | "absent" ("ignore" matches are dropped)


@dataclass(frozen=True, eq=False)  # hashed by identity: pattern_hits caches on it
class MentionMatcher:
    regex: re.Pattern
    by_phrase: dict[str, tuple[tuple[str, str], ...]]  # normalised phrase -> ((category, kind), ...)
    patterns: tuple[tuple[re.Pattern, str, str], ...]  # (compiled pattern, category, kind)

    @lru_cache(maxsize=1 << 14)  # noqa: B019 - the matcher is built once per process
    def pattern_hits(self, text: str) -> tuple[tuple[str, str], ...]:
        """(category, kind) of every pattern that matches the whole of ``text``."""
        return tuple((c, k) for p, c, k in self.patterns if p.fullmatch(text))

    def find(self, lower: str) -> list[Mention]:
        """All mentions in lower-cased text, left to right (one phrase may name two categories)."""
        out: list[Mention] = []
        by_phrase = self.by_phrase
        for m in self.regex.finditer(lower):
            s, e = m.span()
            text = m.group()
            hits = by_phrase.get(text) or by_phrase.get(normalise(text)) or self.pattern_hits(text)
            for cat, kind in hits:
                if kind != "ignore":
                    out.append(Mention(s, e, cat, kind))
        return out


def is_pattern(item: str) -> bool:
    """A vocabulary entry with regex syntax ('\\s', '(?:') is a pattern; any other is a phrase."""
    return "\\" in item or "(?" in item


@cache
def mention_matcher() -> MentionMatcher:
    by_phrase: dict[str, list[tuple[str, str]]] = {}
    patterns: list[tuple[str, str, str]] = []
    for cat in vocab.load_vocabulary().values():
        for kind, items in (("strong", cat.phrases + cat.patterns), ("weak", cat.weak),
                            ("absent", cat.absent), ("ignore", cat.ignore)):
            for item in items:
                if is_pattern(item):
                    patterns.append((item, cat.id, kind))
                else:
                    for form in spelling_variants(item):  # "oedema" as well as "edema"
                        by_phrase.setdefault(normalise(form), []).append((cat.id, kind))
    # Patterns first: they are the long, specific statements ("heart size is mildly enlarged").
    alternation = "|".join([p for p, _, _ in patterns] + [trie_regex(list(by_phrase))])
    return MentionMatcher(
        regex=re.compile(_bounded(alternation)),
        by_phrase={k: tuple(v) for k, v in by_phrase.items()},
        patterns=tuple((re.compile(p), c, k) for p, c, k in patterns))


# Cue kinds: NEG_F / NEG_B / UNC_F / UNC_B / UNC_BI / PSEUDO / TERM / HYPO, as flags in one
# int. A HYPO cue (a recommendation) is also an UNC_F cue: it governs like one.
NEG_F, NEG_B, UNC_F, UNC_B, UNC_BI, PSEUDO, TERM, HYPO = (1 << i for i in range(8))


@dataclass(frozen=True)
class CueMatcher:
    regex: re.Pattern
    kinds: dict[str, int]  # normalised cue -> flags

    def find(self, lower: str) -> list[tuple[int, int, int]]:
        """(start, end, flags) of every cue, pseudo cues included (callers skip them)."""
        kinds = self.kinds
        return [(m.start(), m.end(), kinds.get(m.group()) or kinds[normalise(m.group())])
                for m in self.regex.finditer(lower)]


@cache
def cue_matcher() -> CueMatcher:
    t = vocab.load_triggers()
    kinds: dict[str, int] = {}
    for flag, items in ((NEG_F, t.neg_forward), (NEG_B, t.neg_backward), (UNC_F, t.unc_forward),
                        (UNC_B, t.unc_backward), (UNC_BI, t.unc_bidirectional),
                        (PSEUDO, t.pseudo), (TERM, t.termination),
                        (HYPO | UNC_F, t.hypothetical)):
        for item in items:
            for form in spelling_variants(item):  # "is favoured" as well as "is favored"
                key = normalise(form)
                kinds[key] = kinds.get(key, 0) | flag
    words = [k for k in kinds if k[-1].isalnum()]
    marks = [k for k in kinds if not k[-1].isalnum()]  # "?": no word boundary after it
    alternation = _bounded(trie_regex(words))
    if marks:
        alternation += "|" + "|".join(re.escape(m) for m in marks)
    return CueMatcher(regex=re.compile(alternation), kinds=kinds)


@dataclass(frozen=True)
class Modifier:
    severity: Severity | None
    side: Side | None
    region: str | None
    current: bool = False  # a grade after change language ("now moderate"): the grade of today


@dataclass(frozen=True)
class ModifierMatcher:
    regex: re.Pattern
    meaning: dict[str, Modifier]  # normalised literal phrase -> its meaning
    by_group: dict[str, Modifier]  # named group of a regex term ("R" before a word) -> meaning

    def find(self, lower: str) -> list[tuple[int, Modifier]]:
        meaning, by_group = self.meaning, self.by_group
        return [(m.start(), by_group[m.lastgroup] if m.lastgroup
                 else meaning.get(m.group()) or meaning[normalise(m.group())])
                for m in self.regex.finditer(lower)]


_GRADE_FILLERS = ("", "a ", "an ", "only ")  # "now a small effusion", "now only trace"


@cache
def modifier_matcher() -> ModifierMatcher:
    meaning: dict[str, Modifier] = {}
    grades = vocab.load_severity()
    for word, sev in grades.items():
        for form in spelling_variants(word):
            meaning[normalise(form)] = Modifier(sev, None, None)
    current, past = vocab.load_change_markers()
    for word, sev in grades.items():  # "now moderate" / "from large" (severity.yaml: change)
        if sev is None:
            continue
        for filler in _GRADE_FILLERS:
            for marker in current:
                meaning[normalise(f"{marker} {filler}{word}")] = Modifier(sev, None, None, True)
            for marker in past:
                meaning[normalise(f"{marker} {filler}{word}")] = Modifier(None, None, None)
    locations = vocab.load_locations()
    for word, loc in locations.terms.items():
        for form in spelling_variants(word):
            key = normalise(form)
            old = meaning.get(key)
            meaning[key] = Modifier(old.severity if old else None, loc.side, loc.region)
    by_group = {f"loc{i}": Modifier(None, loc.side, loc.region)
                for i, (_, loc) in enumerate(locations.patterns)}
    groups = [f"(?P<loc{i}>{regex})" for i, (regex, _) in enumerate(locations.patterns)]
    regex = re.compile(_bounded("|".join([*groups, trie_regex(list(meaning))])))
    return ModifierMatcher(regex=regex, meaning=meaning, by_group=by_group)
