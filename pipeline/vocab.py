"""Typed, cached loaders of the packaged knowledge (``pipeline/resources/*.yaml``).

One concept per file, chexpert-labeler / NegBio style: the category vocabulary, negation and
uncertainty cues, severity and location lexicons, and the IKI dictionary of visual explanations.
Files are read with ``importlib.resources`` so they work from a wheel as well as from a checkout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

from db.models import Severity, Side

RESOURCE_PACKAGE = "pipeline.resources"


@dataclass(frozen=True)
class Category:
    id: str
    label: str
    phrases: tuple[str, ...]  # literal mention phrases
    patterns: tuple[str, ...]  # regular expressions (non-capturing groups only)
    weak: tuple[str, ...]  # suggestive signs: yield "uncertain" (literal or regex, see phrase_or_regex)
    absent: tuple[str, ...]  # statements of absence: yield "absent"
    ignore: tuple[str, ...]  # look-alike phrases matched and dropped ("subcutaneous emphysema")
    implies: tuple[str, ...]  # categories every strong mention also asserts
    comment: str
    regional: bool = True  # a lung/pleural zone (upper, basilar...) describes it; not the heart's size


@dataclass(frozen=True)
class Triggers:
    neg_forward: tuple[str, ...]
    neg_backward: tuple[str, ...]
    unc_forward: tuple[str, ...]
    unc_backward: tuple[str, ...]
    unc_bidirectional: tuple[str, ...]
    pseudo: tuple[str, ...]
    termination: tuple[str, ...]
    hypothetical: tuple[str, ...] = ()  # recommendations: what they name is asked, not seen


@dataclass(frozen=True)
class LocationTerm:
    side: Side | None
    region: str | None


@dataclass(frozen=True)
class Locations:
    regions: tuple[str, ...]
    terms: dict[str, LocationTerm]
    patterns: tuple[tuple[str, LocationTerm], ...] = ()  # (regex, what its match gives)


def read_yaml(name: str) -> dict:
    """Parse one packaged resource file."""
    text = resources.files(RESOURCE_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a mapping at top level")
    return data



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



def _strs(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of strings")
    return tuple(value)


@cache
def load_vocabulary() -> dict[str, Category]:
    """Category id -> Category, in file order."""
    data = read_yaml("vocabulary.yaml")["categories"]
    out: dict[str, Category] = {}
    for cid, entry in data.items():
        where = f"vocabulary.yaml:{cid}"
        unknown = set(entry) - {"label", "phrases", "patterns", "weak", "absent", "ignore", "implies",
                             "comment", "regional"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        out[cid] = Category(
            id=cid, label=entry["label"], phrases=_strs(entry.get("phrases"), where),
            patterns=_strs(entry.get("patterns"), where), weak=_strs(entry.get("weak"), where),
            absent=_strs(entry.get("absent"), where), ignore=_strs(entry.get("ignore"), where),
            implies=_strs(entry.get("implies"), where),
            comment=entry.get("comment", ""), regional=bool(entry.get("regional", True)))
    for cat in out.values():
        for other in cat.implies:
            if other not in out:
                raise ValueError(f"vocabulary.yaml:{cat.id}: implies unknown category {other!r}")
    return out


def category_ids() -> tuple[str, ...]:
    return tuple(load_vocabulary())


@dataclass(frozen=True)
class SectionSpec:
    headers: tuple[str, ...]  # header names opening the section (any case)
    image: bool  # the section describes the film (False: indication, comparison, ...)


@cache
def load_sections() -> dict[str, SectionSpec]:
    """Section id -> its header names (resources/sections.yaml; grammar in pipeline.sections)."""
    out: dict[str, SectionSpec] = {}
    for sid, spec in read_yaml("sections.yaml")["sections"].items():
        unknown = set(spec) - {"headers", "image"}
        if unknown or not isinstance(spec.get("image"), bool):
            raise ValueError(f"sections.yaml:{sid}: needs headers and a true/false image "
                             f"(unknown keys {sorted(unknown)})")
        out[sid] = SectionSpec(_strs(spec["headers"], f"sections.yaml:{sid}"), spec["image"])
    return out


@cache
def load_triggers() -> Triggers:
    data = read_yaml("triggers.yaml")
    neg, unc = data["negation"], data["uncertainty"]
    return Triggers(
        neg_forward=_strs(neg.get("forward"), "negation.forward"),
        neg_backward=_strs(neg.get("backward"), "negation.backward"),
        unc_forward=_strs(unc.get("forward"), "uncertainty.forward"),
        unc_backward=_strs(unc.get("backward"), "uncertainty.backward"),
        unc_bidirectional=_strs(unc.get("bidirectional"), "uncertainty.bidirectional"),
        pseudo=_strs(data.get("pseudo"), "pseudo"),
        termination=_strs(data.get("termination"), "termination"),
        hypothetical=_strs(data.get("hypothetical"), "hypothetical"))


@cache
def load_severity() -> dict[str, Severity | None]:
    """Modifier phrase (lower case) -> severity; None for phrases that grade a change only."""
    data = read_yaml("severity.yaml")["severity"]
    out: dict[str, Severity | None] = {}
    for level, words in data.items():
        for w in _strs(words, f"severity.yaml:{level}"):
            out[w.lower()] = None if level == "none" else Severity(level)
    return out


@cache
def load_change_markers() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(current, past) markers of severity.yaml's ``change``: "now moderate", "from large"."""
    data = read_yaml("severity.yaml").get("change") or {}
    return (_strs(data.get("current"), "severity.yaml:change.current"),
            _strs(data.get("past"), "severity.yaml:change.past"))


@cache
def load_locations() -> Locations:
    data = read_yaml("locations.yaml")
    regions = _strs(data["regions"], "locations.yaml:regions")
    terms: dict[str, LocationTerm] = {}
    for term, spec in data["terms"].items():
        terms[term.lower()] = _location_term(spec, regions, f"locations.yaml:{term}")
    patterns = tuple((spec["regex"], _location_term(spec, regions, f"locations.yaml:{spec}"))
                     for spec in data.get("patterns") or [])
    return Locations(regions=regions, terms=terms, patterns=patterns)


def _location_term(spec: dict, regions: tuple[str, ...], where: str) -> LocationTerm:
    region = spec.get("region")
    if region is not None and region not in regions:
        raise ValueError(f"{where}: unknown region {region!r}")
    side = spec.get("side")
    return LocationTerm(side=Side(side) if side else None, region=region)


@dataclass(frozen=True)
class Spelling:
    british: tuple[tuple[re.Pattern, str], ...]  # (word regex, replacement): American -> British
    min_length: int  # shortest word a typo correction is tried on
    max_distance: int  # edits (Damerau OSA) between a typo and its lexicon word
    doubled_letters_free: bool  # "efussion" for "effusion" costs nothing
    known_words: frozenset[str]  # real words never corrected (besides lexicon and English words)


@cache
def load_spelling() -> Spelling:
    data = read_yaml("spelling.yaml")
    rules = []
    for rule in data.get("british") or []:
        if not (isinstance(rule, list) and len(rule) == 2):
            raise ValueError(f"spelling.yaml:british: expected [regex, replacement], got {rule!r}")
        rules.append((re.compile(rule[0]), rule[1]))
    typos = data["typos"]
    return Spelling(tuple(rules), int(typos["min_length"]), int(typos["max_distance"]),
                    bool(typos["doubled_letters_free"]),
                    frozenset(w.lower() for w in _strs(data.get("known_words"),
                                                       "spelling.yaml:known_words")))


def spelling_variants(phrase: str) -> set[str]:
    """The phrase in American and British spelling: every combination of its words' forms."""
    forms = [""]
    for word in phrase.split():
        alts = {word}
        for regex, repl in load_spelling().british:
            alts |= {regex.sub(repl, w) for w in list(alts)}
        forms = [f"{f} {a}".strip() for f in forms for a in sorted(alts)]
    return set(forms)


@cache
def load_iki() -> dict[str, dict[str, str]]:
    """Category id -> subclass ("" for the category itself) -> explanation."""
    data = read_yaml("iki.yaml")["categories"]
    out: dict[str, dict[str, str]] = {}
    for cid, entry in data.items():
        subs = {"": " ".join(entry["explanation"].split())}
        for key, text in (entry.get("subclasses") or {}).items():
            subs[key] = " ".join(text.split())
        out[cid] = subs
    return out


def iki_version() -> str:
    """The dictionary's version string, written into KnowledgeEntry provenance."""
    return str(read_yaml("iki.yaml").get("version", "1"))
