"""Label texts (MedFILIP §3.2-3.3): one per finding, from the curated triplet and its approved
IKI explanation, ``"{severity} {side} {region} {category}. {explanation}"``.

The explanation is the most specific approved entry: the finding's severity subclass
("severity:severe"), else its region subclass ("region:apical"), else the category's own entry.
Severity comes first because it changes the look of every category the dictionary splits
(a small vs a large effusion), while a region entry exists for only a few.
"""

from __future__ import annotations

from sqlmodel import Session

from db import queries

NO_FINDING = "no finding"


def category_words(category: str) -> str:
    """The category id as words: "pleural_effusion" -> "pleural effusion"."""
    return category.replace("_", " ")


def label_text(category: str, severity: str | None = None, side: str | None = None,
               region: str | None = None, explanation: str | None = None) -> str:
    """``"{severity} {side} {region} {category}. {explanation}"`` with empty parts dropped."""
    head = " ".join(p for p in (severity, side, region, category_words(category)) if p)
    return f"{head}. {explanation}" if explanation else f"{head}."


def negation_text(category: str) -> str:
    """The text of a denied finding, as the zero-shot negative prompt says it."""
    return f"no {category_words(category)}"


def explanations(session: Session) -> dict[tuple[str, str], str]:
    """(category, subclass) -> explanation of the APPROVED IKI entries (subclass "" for the
    category itself, else "severity:<s>" / "region:<r>" / "type:<t>")."""
    return queries.approved_explanations(session=session)


def explanation_for(known: dict[tuple[str, str], str], category: str, severity: str | None,
                    region: str | None) -> str | None:
    """The most specific approved explanation of a finding (see the module docstring)."""
    for key in (f"severity:{severity}" if severity else None,
                f"region:{region}" if region else None, ""):
        if key is not None and (category, key) in known:
            return known[(category, key)]
    return None
