"""Typed, cached loaders of the packaged knowledge (``pipeline/resources/*.yaml``).

One concept per file, chexpert-labeler / NegBio style: the category vocabulary, negation and
uncertainty cues, severity and location lexicons, and the IKI dictionary of visual explanations.
Files are read with ``importlib.resources`` so they work from a wheel as well as from a checkout.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class LocationTerm:
    side: Side | None
    region: str | None


@dataclass(frozen=True)
class Locations:
    regions: tuple[str, ...]
    terms: dict[str, LocationTerm]


def read_yaml(name: str) -> dict:
    """Parse one packaged resource file."""
    text = resources.files(RESOURCE_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: expected a mapping at top level")
    return data


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


@cache
def load_skip_sections() -> frozenset[str]:
    """Lower-cased names of report sections whose mentions are ignored (indication, ...)."""
    return frozenset(s.lower() for s in _strs(read_yaml("vocabulary.yaml").get("skip_sections"),
                                              "vocabulary.yaml:skip_sections"))


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
        termination=_strs(data.get("termination"), "termination"))


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
def load_locations() -> Locations:
    data = read_yaml("locations.yaml")
    regions = _strs(data["regions"], "locations.yaml:regions")
    terms: dict[str, LocationTerm] = {}
    for term, spec in data["terms"].items():
        region = spec.get("region")
        if region is not None and region not in regions:
            raise ValueError(f"locations.yaml:{term}: unknown region {region!r}")
        side = spec.get("side")
        terms[term.lower()] = LocationTerm(side=Side(side) if side else None, region=region)
    return Locations(regions=regions, terms=terms)


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
