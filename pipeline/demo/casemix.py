"""What each demo study shows: findings sampled with clinical co-occurrence.

A study's truth is a list of :class:`TruthFinding`. ``present`` and ``uncertain`` findings are drawn
in the pixels (``uncertain`` = visible, but the report hedges); ``absent`` findings are the ones
the report explicitly negates and are added by ``pipeline.demo.report``. ``side`` and ``region``
hold exactly what the report will say, so the truth can score an extractor's location output.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Rendered categories and their weight as a primary finding in the clinical mix.
PRIMARY_WEIGHTS: dict[str, float] = {
    "pleural_effusion": 12, "cardiomegaly": 10, "atelectasis": 9, "support_devices": 9,
    "pneumonia": 7, "edema": 7, "consolidation": 6, "pneumothorax": 6, "nodule": 6,
    "emphysema": 6, "fracture": 5, "mass": 3, "granuloma": 4, "pleural_thickening": 3,
    "enlarged_cardiomediastinum": 3, "fibrosis": 3, "hernia": 2,
}
RENDERED: tuple[str, ...] = tuple(sorted(PRIMARY_WEIGHTS))
GRADED = {"pleural_effusion", "pneumothorax", "cardiomegaly", "consolidation", "atelectasis",
          "edema", "emphysema", "fibrosis"}  # categories that carry a severity
HEDGEABLE = {"pneumonia", "consolidation", "atelectasis", "edema", "pneumothorax",
             "pleural_effusion", "nodule", "fracture", "cardiomegaly", "mass"}
SEVERITIES = ("mild", "moderate", "severe")
DEVICES = ("ett", "ng", "cvc_right", "cvc_left", "picc", "pacemaker")


@dataclass
class TruthFinding:
    category: str
    presence: str  # present | absent | uncertain
    severity: str | None = None  # mild | moderate | severe
    side: str | None = None  # left | right | bilateral
    region: str | None = None  # upper, middle, lower, apical, basilar, perihilar, retrocardiac, ...
    detail: dict = field(default_factory=dict)  # drawing/prose details, not part of the truth

    def truth(self) -> dict:
        return {"category": self.category, "presence": self.presence,
                "severity": self.severity, "side": self.side, "region": self.region}


def _pick(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def _side(rng: np.random.Generator, bilateral: float = 0.0) -> str:
    if rng.random() < bilateral:
        return "bilateral"
    return "right" if rng.random() < 0.5 else "left"


def _severity(rng: np.random.Generator) -> str:
    return _pick(rng, SEVERITIES, [0.45, 0.35, 0.2])


def _lobar(rng: np.random.Generator, f: TruthFinding) -> None:
    f.side = _side(rng, 0.12)
    f.region = _pick(rng, ("upper", "middle", "lower"), [0.3, 0.2, 0.5])
    if f.side == "left" and f.region == "lower" and rng.random() < 0.3:
        f.region = "retrocardiac"


def make_finding(category: str, rng: np.random.Generator) -> TruthFinding:
    """One rendered finding with attributes drawn the way they occur."""
    f = TruthFinding(category, "present")
    if category in GRADED:
        f.severity = _severity(rng)
    if category == "pleural_effusion":
        f.side = _side(rng, 0.3)
        f.region = "costophrenic" if f.severity == "mild" and rng.random() < 0.4 else None
    elif category == "pneumothorax":
        f.side = _side(rng)
        f.region = "apical" if f.severity == "mild" and rng.random() < 0.6 else None
    elif category in ("consolidation", "pneumonia"):
        _lobar(rng, f)
    elif category == "atelectasis":
        if f.severity == "severe":
            f.side = _side(rng)
            f.region = "upper" if f.side == "right" else "retrocardiac"
        else:
            f.side = _side(rng, 0.35)
            f.region = "basilar"
    elif category == "edema":
        f.side = "bilateral" if rng.random() < 0.3 else None
        f.region = "perihilar" if f.severity != "mild" and rng.random() < 0.5 else None
    elif category in ("nodule", "mass", "granuloma"):
        f.side = _side(rng)
        f.region = _pick(rng, ("upper", "middle", "lower"))
        lo, hi = {"nodule": (1.2, 2.9), "mass": (3.5, 7.0), "granuloma": (0.5, 0.9)}[category]
        f.detail["size_cm"] = round(float(rng.uniform(lo, hi)), 1)
    elif category == "emphysema":
        f.side = "bilateral" if rng.random() < 0.3 else None
        f.region = "upper" if rng.random() < 0.3 else None
    elif category == "fibrosis":
        f.side, f.region = "bilateral", "basilar"
    elif category == "pleural_thickening":
        f.side, f.region = _side(rng, 0.3), "apical"
    elif category == "hernia":
        f.region = "retrocardiac" if rng.random() < 0.4 else None
    elif category == "fracture":
        f.side = _side(rng)
        # Acute nondisplaced rib fractures are mostly occult on radiographs: the ones a report
        # calls are displaced, or healing with callus.
        displaced = bool(rng.random() < 0.65)
        f.detail.update(rib=int(rng.integers(4, 8)), count=int(rng.choice([1, 2, 2, 3])),
                        pos=float(rng.uniform(0.44, 0.58)), displaced=displaced,
                        healing=bool(not displaced or rng.random() < 0.3))
    elif category == "support_devices":
        f.detail["devices"] = _devices(rng)
        f.detail["ett_cm"] = int(rng.integers(2, 7))
    return f


def _devices(rng: np.random.Generator) -> list[str]:
    n = int(rng.choice([1, 1, 2, 3]))
    devs = list(rng.choice(len(DEVICES), size=n, replace=False, p=[0.3, 0.2, 0.2, 0.1, 0.1, 0.1]))
    return [DEVICES[i] for i in sorted(devs)]


# (given category, companion, probability, companion shares the side)
ASSOCIATIONS = (
    ("pleural_effusion", "atelectasis", 0.45, True),
    ("cardiomegaly", "edema", 0.35, False),
    ("cardiomegaly", "pleural_effusion", 0.2, False),
    ("edema", "cardiomegaly", 0.5, False),
    ("edema", "pleural_effusion", 0.4, False),
    ("pneumonia", "pleural_effusion", 0.2, True),
    ("fracture", "pneumothorax", 0.2, True),
    ("emphysema", "nodule", 0.1, False),
    ("edema", "support_devices", 0.3, False),
)


def sample_findings(rng: np.random.Generator, uniform: bool = False,
                    normal_share: float = 0.3) -> list[TruthFinding]:
    """The rendered findings of one study (empty for a normal study)."""
    if rng.random() < normal_share:
        return []
    cats = list(PRIMARY_WEIGHTS)
    w = np.ones(len(cats)) if uniform else np.array([PRIMARY_WEIGHTS[c] for c in cats], float)
    k = int(rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1]))
    chosen = [cats[i] for i in rng.choice(len(cats), size=k, replace=False, p=w / w.sum())]
    findings = [make_finding(c, rng) for c in chosen]
    for given, comp, p, same_side in ASSOCIATIONS:
        src = next((f for f in findings if f.category == given), None)
        if src is None or any(f.category == comp for f in findings) or rng.random() >= p:
            continue
        g = make_finding(comp, rng)
        if same_side and src.side in ("left", "right") and g.side is not None:
            g.side = src.side
        if comp == "atelectasis" and given == "pleural_effusion":
            g.severity, g.region = _pick(rng, ("mild", "moderate")), "basilar"
            g.side = src.side
        if comp == "pleural_effusion" and given in ("cardiomegaly", "edema"):
            g.side = "bilateral" if rng.random() < 0.6 else g.side
        findings.append(g)
    _hedge(rng, findings)
    return findings


def _hedge(rng: np.random.Generator, findings: list[TruthFinding]) -> None:
    for f in findings:
        if f.category in HEDGEABLE and f.severity != "severe" and rng.random() < 0.15:
            f.presence = "uncertain"


def sample_view(rng: np.random.Generator, findings: list[TruthFinding]) -> str:
    icu = any(f.category in ("support_devices", "edema") for f in findings)
    return "AP" if rng.random() < (0.75 if icu else 0.15) else "PA"
