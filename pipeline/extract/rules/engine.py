"""The offline rule-based finding extractor (NegEx / ConText style).

Per report: lower-case once; find mentions, cues and modifier words with one compiled regex each
(``rules_match``); lay out sentences and clauses (``rules_scope``); give every mention a presence
from the cues of its clause, and a severity / side / region from the modifier words of its
window; keep one finding per (category, side) instance, as MedFILIP's triplets are (the CheXpert
per-category fold is ``pipeline.fold.fold_by_category``, for those who want it).

Evidence is the mention's SENTENCE, a verbatim slice of the input text (whitespace-trimmed), so a
reviewer sees the negation or hedge that decided the presence, not just the noun.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import resources

from db.models import Presence, Severity, Side
from pipeline import sections, vocab
from pipeline.extract.findings import Evidence, ExtractedFinding, ExtractionResult, Location
from pipeline.extract.rules import scope as rules_scope
from pipeline.extract.rules.match import Mention, cue_matcher, mention_matcher, modifier_matcher
from pipeline.extract.rules.spelling import TypoCorrector, lexicon_words
from pipeline.fold import PRESENCE_RANK, SEVERITY_RANK

ENGINE_VERSION = "2"  # bump when the engine's behaviour changes; resource edits bump it by hash
RIGHT_WINDOW_CHARS = 40  # how far after a mention "is small" / "on the left" may be read
# The right window stops where a new phrase starts ("effusion with mediastinal shift to the
# left"): the next comma, semicolon, colon or conjunction. A status word ("is noted",
# "persists", "remains") does not end it: "effusions are noted bilaterally".
RIGHT_STOP_RE = re.compile(
    r"[,;:]|\b(?:and|with|without|or|but|which|that|while|whereas|although|though|however|except)\b")
# What may stand between the modifier words of a comma phrase that describes the mention before
# it ("effusions, left greater than right", "nodule, right upper lobe, in size").
APPOSITIVE_FILLER_RE = re.compile(
    r"\b(?:on|the|in|at|of|side|sided|greater|than|more|less|size|volume|extent)\b|[\s>.<]")
COORDINATION_RE = re.compile(r"\band\b|,|&")  # "right and left", "right, left"
UNEXPLAINING = frozenset({"support_devices", "fracture"})  # no anchor for a recommendation
_RESOURCES = ("vocabulary.yaml", "triggers.yaml", "severity.yaml", "locations.yaml",
              "sections.yaml", "spelling.yaml")


def resources_digest() -> str:
    """A short hash of the lexicons: any edit makes a new extractor version."""
    h = hashlib.sha256()
    for name in _RESOURCES:
        h.update(resources.files(vocab.RESOURCE_PACKAGE).joinpath(name).read_bytes())
    return h.hexdigest()[:8]


@dataclass
class _Candidate:
    category: str
    presence: Presence
    severity: Severity | None
    side: Side | None
    region: str | None
    start: int  # mention offsets
    end: int
    asked: bool = False  # only a recommendation names it (triggers.yaml: hypothetical)


def _read(window) -> tuple[Severity | None, Side | None, str | None]:
    """Severity (the highest), side (two sides: bilateral) and region (the first) of a window
    of (position, Modifier)."""
    sev = side = region = None
    for _, mod in window:
        if mod.severity and (sev is None or SEVERITY_RANK[mod.severity] > SEVERITY_RANK[sev]):
            sev = mod.severity
        if mod.side:
            side = mod.side if side in (None, mod.side) else Side.bilateral
        if mod.region and region is None:
            region = mod.region
    return sev, side, region


def _per_side(lower: str, window, mention_start: int) -> list[tuple[list, list]]:
    """(own, shared) modifier windows: one per side when the words before the mention name a
    right and a left joined by "and" or a comma ("moderate right and small left pleural
    effusions": right moderate, left mild), else the whole window. Shared words after the
    second side ("right and left lower lobe") fill what a side's own words leave open."""
    sides = [k for k, (pos, mod) in enumerate(window)
             if mod.side and pos < mention_start and mod.side is not Side.bilateral]
    if len(sides) != 2 or window[sides[0]][1].side == window[sides[1]][1].side:
        return [(window, [])]
    a, b = sides
    joint = COORDINATION_RE.search(lower, window[a][0], window[b][0])
    if not joint:
        return [(window, [])]
    c = next(k for k in range(a + 1, b + 1) if window[k][0] >= joint.end())
    shared = window[b + 1:]
    return [(window[:c], shared), (window[c:b + 1], shared)]


class RuleExtractor:
    """``Extractor`` protocol implementation; ``extract(text)`` for one report."""

    name = "rules"

    def __init__(self, *, correct_typos: bool = True) -> None:
        """``correct_typos=False`` reads words only as spelt (benches measure what it adds)."""
        self.version = f"{ENGINE_VERSION}-{resources_digest()}" + ("" if correct_typos else "-nt")
        self._mentions = mention_matcher()
        self._cues = cue_matcher()
        self._modifiers = modifier_matcher()
        cats = vocab.load_vocabulary().values()
        self._implies = {c.id: c.implies for c in cats if c.implies}
        self._regional = frozenset(c.id for c in cats if c.regional)
        self._tag = f"{self.name}/{self.version}"
        self._typos = TypoCorrector(lexicon_words(
            [*self._mentions.by_phrase, *(p.pattern for p, _, _ in self._mentions.patterns),
             *self._cues.kinds, *self._modifiers.meaning])) if correct_typos else None
        self.typo_count = 0  # words corrected so far (bench figure)

    def extract(self, text: str) -> list[ExtractedFinding]:
        lower = text.lower()
        fixed = self._typos.correct(text, lower) if self._typos else None
        if fixed is None:
            return self._extract(text, lower)
        self.typo_count += len(fixed.starts)
        # Read the corrected text; quote the report as written.
        out = []
        for f in self._extract(fixed.text, fixed.lower):
            s, e = fixed.original(f.evidence.start), fixed.original(f.evidence.end)
            out.append(f.model_copy(update={"evidence": Evidence(start=s, end=e, text=text[s:e])}))
        return out

    def _extract(self, text: str, lower: str) -> list[ExtractedFinding]:
        mentions = self._mentions.find(lower)
        if not mentions:
            return []
        headers = sections.find_headers(text)
        skipped = rules_scope.skipped_spans(text, headers)
        if skipped:
            mentions = [m for m in mentions
                        if not any(s <= m.start < e for s, e in skipped)]
        lay = rules_scope.layout(text, lower, self._cues.find(lower), headers)
        mods = self._modifiers.find(lower)
        mod_starts = [p for p, _ in mods]
        has_now = any(mod.current for _, mod in mods)  # change language: rare, so checked once
        candidates = []
        for i, m in enumerate(mentions):
            presence = rules_scope.presence_of(lay, m.start, m.end, m.kind)
            asked = presence is None  # a recommendation's object: kept only if anchored
            presence = presence or Presence.uncertain
            cats = [m.category, *(self._implies.get(m.category, ()) if m.kind == "strong" else ())]
            for sev, side, region in self._modify(lower, lay, mentions, i, mods, mod_starts,
                                                  has_now):
                if presence is Presence.absent:
                    sev = None
                candidates += [_Candidate(c, presence, sev, side, region, m.start, m.end, asked)
                               for c in cats]
        candidates = self._anchor_asked(text, lay, candidates)
        return self._instances(text, lay, self._inherit_location(text, lay, candidates))

    def _anchor_asked(self, text: str, lay, candidates: list[_Candidate]) -> list[_Candidate]:
        """What a recommendation asks about is an uncertain finding only when the same or the
        previous sentence states a finding it may explain ("right basilar opacity, correlate
        clinically for pneumonia"); otherwise it is none ("lungs clear. Correlate clinically
        for infection."). Devices explain nothing."""
        if not any(c.asked for c in candidates):
            return candidates
        seen = {rules_scope.sentence_index(lay, c.start) for c in candidates
                if not c.asked and c.presence is not Presence.absent
                and c.category not in UNEXPLAINING}
        return [c for c in candidates if not c.asked
                or seen & {rules_scope.sentence_index(lay, c.start),
                           rules_scope.sentence_index(lay, c.start) - 1}]

    def _inherit_location(self, text: str, lay, candidates: list[_Candidate]) -> list[_Candidate]:
        """An unlocated finding takes the side (and zone) of a located one in its sentence.

        "Right lower lobe opacity, atelectasis versus pneumonia", "large right effusion with
        compressive atelectasis": the interpretation or companion sits where its anchor is.
        The nearest preceding located mention wins, else the nearest following one; negated
        mentions neither give nor take a location, and non-regional findings (heart size,
        devices) take none.
        """
        sentences: dict[tuple[int, int], list[_Candidate]] = {}
        for c in candidates:
            sentences.setdefault(rules_scope.sentence_of(lay, text, c.start), []).append(c)
        out = []
        for group in sentences.values():
            anchors = [c for c in group if c.side and c.presence is not Presence.absent]
            for c in group:
                if (anchors and not c.side and c.presence is not Presence.absent
                        and c.category in self._regional):
                    src = min(anchors, key=lambda a: (a.start > c.start, abs(a.start - c.start)))
                    c = replace(c, side=src.side, region=c.region or src.region)
                out.append(c)
        return out

    def _modify(self, lower: str, lay, mentions: list[Mention], i: int, mods, mod_starts,
                has_now: bool):
        """(severity, side, region) readings from modifier words in the mention's window: one,
        or one per side of "moderate right and small left pleural effusions"."""
        m = mentions[i]
        lo, _ = rules_scope.clause_of(lay, m.start, m.end)
        if i and mentions[i - 1].end > lo and mentions[i - 1].end <= m.start:
            lo = mentions[i - 1].end
        _, sentence_end = rules_scope.sentence_of(lay, lower, m.start)
        # A template label's mention is described by its whole answer ("Pleural effusion:
        # Moderate right, loculated."); any other by a short window.
        in_label = rules_scope.label_of(lay, m.start, m.end) is not None
        right = sentence_end if in_label else min(sentence_end, m.end + RIGHT_WINDOW_CHARS)
        if i + 1 < len(mentions) and m.end <= mentions[i + 1].start < right:
            right = mentions[i + 1].start
        stop = None if in_label else RIGHT_STOP_RE.search(lower, m.end, right)
        if stop and lower[stop.start()] == "," and self._appositive(lower, stop.end(), right):
            stop = RIGHT_STOP_RE.search(lower, stop.end(), right)  # "effusions, L>R"
        if stop:
            right = stop.start()
        first = bisect_left(mod_starts, lo)
        window = mods[first:bisect_left(mod_starts, right, lo=first)]
        now = self._current_grade(mentions, i, mods, first, sentence_end) if has_now else None
        parts = _per_side(lower, window, m.start)
        if len(parts) == 1:
            sev, side, region = _read(window)
            return [(now or sev, side, region)]
        readings = []
        for own, shared in parts:
            sev, side, region = _read(own)
            dsev, _, dregion = _read(shared)
            readings.append((now or sev or dsev, side, region or dregion))
        return readings

    def _appositive(self, lower: str, start: int, right: int) -> bool:
        """Is the comma phrase from ``start`` only modifier words ("effusions, L>R",
        "atelectasis, left lower lobe", "cardiomegaly, mild")? Then it describes the mention."""
        stop = RIGHT_STOP_RE.search(lower, start, right)
        segment = lower[start: stop.start() if stop else right]
        rest = APPOSITIVE_FILLER_RE.sub("", self._modifiers.regex.sub(" ", segment))
        return bool(segment.strip()) and not rest.strip()

    @staticmethod
    def _current_grade(mentions: list[Mention], i: int, mods, first: int, sentence_end: int):
        """The last "now <grade>" from the window's start (mods[first]) to the sentence end or
        the next mention: it wins over other grades ("the effusion has grown and is now
        moderate"), past the usual window."""
        hi = sentence_end
        if i + 1 < len(mentions) and mentions[i + 1].start < hi:
            hi = mentions[i + 1].start
        now = None
        for k in range(first, len(mods)):
            pos, mod = mods[k]
            if pos >= hi:
                break
            if mod.current:
                now = mod.severity
        return now

    def _instances(self, text: str, lay, candidates: list[_Candidate]) -> list[ExtractedFinding]:
        """One finding per (category, side) instance, as MedFILIP's triplets are.

        "Moderate right pleural effusion. No left pleural effusion." is two findings. Mentions
        of one instance fold present > uncertain > absent, severity maxes, the first region wins.
        An unsided mention belongs to a located instance of its category that is not absent
        ("small left effusion ... IMPRESSION: small effusion" is one effusion; "no new effusion"
        beside a located one adds no absent finding); it stays its own instance otherwise
        ("no pneumothorax").
        """
        groups: dict[tuple[str, Side | None], list[_Candidate]] = {}
        for c in candidates:
            if c.side:
                groups.setdefault((c.category, c.side), []).append(c)
        for c in candidates:
            if c.side:
                continue
            located = [g for (cat, _), g in groups.items()
                       if cat == c.category and any(x.presence is not Presence.absent for x in g)]
            home = max(located, key=lambda g: max(PRESENCE_RANK[x.presence] for x in g), default=None)
            if home is None:
                groups.setdefault((c.category, None), []).append(c)
            else:
                home.append(c)
        ordered = sorted(groups.items(), key=lambda kv: min(c.start for c in kv[1]))
        return [self._finding(text, lay, cat, side, cands) for (cat, side), cands in ordered]

    def _finding(self, text: str, lay, cat: str, side: Side | None,
                 cands: list[_Candidate]) -> ExtractedFinding:
        top = max(PRESENCE_RANK[c.presence] for c in cands)
        best = sorted((c for c in cands if PRESENCE_RANK[c.presence] == top), key=lambda c: c.start)
        sev = max((c.severity for c in best if c.severity), key=SEVERITY_RANK.get, default=None)
        region = next((c.region for c in best if c.region), None) if cat in self._regional else None
        s, e = rules_scope.sentence_of(lay, text, best[0].start)
        return ExtractedFinding(
            category=cat, presence=best[0].presence, severity=sev,
            location=Location(side=side, region=region),
            evidence=Evidence(start=s, end=e, text=text[s:e]), extractor=self._tag)

    def extract_batch(self, items: Sequence[tuple[str, str]]) -> Iterator[ExtractionResult]:
        for item_id, text in items:
            try:
                yield ExtractionResult(id=item_id, findings=self.extract(text))
            except Exception as exc:  # one bad report must not stop a run
                yield ExtractionResult(id=item_id, error=f"{type(exc).__name__}: {exc}")
