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
from functools import cache

from db.models import Severity, Side
from pipeline import vocab

_SEP = " "  # a space in a phrase matches any run of whitespace or hyphens
_SEP_RE = r"[\s\-]+"
_SPLIT = re.compile(r"[\s\-]+")


def normalise(s: str) -> str:
    """The lookup key of a matched span: lower case, separators collapsed to one space."""
    return " ".join(_SPLIT.split(s.strip().lower()))


def trie_regex(phrases: list[str]) -> str:
    """A regex matching exactly the (normalised) phrases, longest first at each position."""
    trie: dict = {}
    for p in phrases:
        node = trie
        for ch in normalise(p):
            node = node.setdefault(ch, {})
        node[""] = {}  # end of a phrase
    return _node_regex(trie)


def _node_regex(node: dict) -> str:
    ends = "" in node
    branches = []
    for ch in sorted(k for k in node if k):
        head = _SEP_RE if ch == _SEP else re.escape(ch)
        branches.append(head + _node_regex(node[ch]))
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if ends:  # greedy optional: try the longer continuation first
        body = "(?:" + body + ")?"
    return body


def _bounded(regex: str) -> str:
    return r"(?<![\w])(?:" + regex + r")(?![\w])"


@dataclass(frozen=True)
class Mention:
    start: int
    end: int
    category: str
    kind: str  # "strong" | "weak" | "absent" ("ignore" matches are dropped)


@dataclass(frozen=True)
class MentionMatcher:
    regex: re.Pattern
    by_phrase: dict[str, tuple[tuple[str, str], ...]]  # normalised phrase -> ((category, kind), ...)
    patterns: tuple[tuple[re.Pattern, str, str], ...]  # (compiled pattern, category, kind)

    def find(self, lower: str) -> list[Mention]:
        """All mentions in lower-cased text, left to right (one phrase may name two categories)."""
        out: list[Mention] = []
        for m in self.regex.finditer(lower):
            s, e = m.span()
            hits = self.by_phrase.get(normalise(m.group()))
            if hits is None:
                text = m.group()
                hits = tuple((c, k) for p, c, k in self.patterns if p.fullmatch(text))
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
                    by_phrase.setdefault(normalise(item), []).append((cat.id, kind))
    # Patterns first: they are the long, specific statements ("heart size is mildly enlarged").
    alternation = "|".join([p for p, _, _ in patterns] + [trie_regex(list(by_phrase))])
    return MentionMatcher(
        regex=re.compile(_bounded(alternation)),
        by_phrase={k: tuple(v) for k, v in by_phrase.items()},
        patterns=tuple((re.compile(p), c, k) for p, c, k in patterns))


# Cue kinds: NEG_F / NEG_B / UNC_F / UNC_B / UNC_BI / PSEUDO / TERM, as flags in one int.
NEG_F, NEG_B, UNC_F, UNC_B, UNC_BI, PSEUDO, TERM = (1 << i for i in range(7))


@dataclass(frozen=True)
class CueMatcher:
    regex: re.Pattern
    kinds: dict[str, int]  # normalised cue -> flags

    def find(self, lower: str) -> list[tuple[int, int, int]]:
        """(start, end, flags) of every cue, pseudo cues included (callers skip them)."""
        kinds = self.kinds
        return [(m.start(), m.end(), kinds[normalise(m.group())]) for m in self.regex.finditer(lower)]


@cache
def cue_matcher() -> CueMatcher:
    t = vocab.load_triggers()
    kinds: dict[str, int] = {}
    for flag, items in ((NEG_F, t.neg_forward), (NEG_B, t.neg_backward), (UNC_F, t.unc_forward),
                        (UNC_B, t.unc_backward), (UNC_BI, t.unc_bidirectional),
                        (PSEUDO, t.pseudo), (TERM, t.termination)):
        for item in items:
            key = normalise(item)
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


@dataclass(frozen=True)
class ModifierMatcher:
    regex: re.Pattern
    meaning: dict[str, Modifier]

    def find(self, lower: str) -> list[tuple[int, Modifier]]:
        meaning = self.meaning
        return [(m.start(), meaning[normalise(m.group())]) for m in self.regex.finditer(lower)]


@cache
def modifier_matcher() -> ModifierMatcher:
    meaning: dict[str, Modifier] = {}
    for word, sev in vocab.load_severity().items():
        meaning[normalise(word)] = Modifier(sev, None, None)
    for word, loc in vocab.load_locations().terms.items():
        key = normalise(word)
        old = meaning.get(key)
        meaning[key] = Modifier(old.severity if old else None, loc.side, loc.region)
    return ModifierMatcher(regex=re.compile(_bounded(trie_regex(list(meaning)))), meaning=meaning)
