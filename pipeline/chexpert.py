"""The CheXpert label columns and the per-category fold of a study's findings.

CheXpert (Irvin et al. 2019; chexpert-labeler) gives each study one value per observation:
1 positive, -1 uncertain, 0 negative, blank not mentioned. Several mentions of one category fold
present > uncertain > absent. "No Finding" is 1 when no pathology (every column but Support
Devices) is positive or uncertain, else blank. Our categories that CheXpert lacks follow as
extra columns; a category's ``implies`` (vocabulary.yaml: a nodule or mass is a Lung Lesion)
also sets the implied column, as the labeler's mention files do.
"""

from __future__ import annotations

from collections.abc import Iterable

from db.models import Presence
from pipeline import vocab
from pipeline.fold import PRESENCE_RANK

NO_FINDING = "No Finding"
# CheXpert's 14 columns, spelled and ordered as in its train.csv, and our category id for each
COLUMNS: dict[str, str | None] = {
    NO_FINDING: None,
    "Enlarged Cardiomediastinum": "enlarged_cardiomediastinum",
    "Cardiomegaly": "cardiomegaly",
    "Lung Opacity": "lung_opacity",
    "Lung Lesion": "lung_lesion",
    "Edema": "edema",
    "Consolidation": "consolidation",
    "Pneumonia": "pneumonia",
    "Atelectasis": "atelectasis",
    "Pneumothorax": "pneumothorax",
    "Pleural Effusion": "pleural_effusion",
    "Pleural Other": "pleural_other",
    "Fracture": "fracture",
    "Support Devices": "support_devices",
}
VALUE = {Presence.present: 1, Presence.uncertain: -1, Presence.absent: 0}


def extra_categories() -> list[str]:
    """Our categories beyond CheXpert's, in vocabulary order (the extra CSV columns)."""
    ours = set(COLUMNS.values())
    return [c for c in vocab.category_ids() if c not in ours]


def fold(findings: Iterable[tuple[str, str]]) -> dict[str, int]:
    """category -> 1 / -1 / 0 of one study's (category, presence) findings; absent keys are
    blank (not mentioned). Mentions fold by ``pipeline.fold``'s presence rank (present >
    uncertain > absent); implied categories are folded in too."""
    implies = {c.id: c.implies for c in vocab.load_vocabulary().values() if c.implies}
    out: dict[str, Presence] = {}
    for category, presence in findings:
        presence = Presence(presence)
        implied = implies.get(category, ()) if presence is not Presence.absent else ()
        for cat in (category, *implied):
            if cat not in out or PRESENCE_RANK[presence] > PRESENCE_RANK[out[cat]]:
                out[cat] = presence
    return {cat: VALUE[p] for cat, p in out.items()}


def no_finding(folded: dict[str, int]) -> int | None:
    """1 when nothing but support devices is positive or uncertain, else blank (None)."""
    pathology = (v for c, v in folded.items() if c != "support_devices")
    return None if any(v in (1, -1) for v in pathology) else 1
