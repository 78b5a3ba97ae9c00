"""Zero-shot prompts and retrieval texts, built with the training's own label-text rule.

Per category (CheXzero-style pair, TRAIN_API.md): the positive prompt is the label text of the
bare category with its approved IKI explanation, ``"{category}. {explanation}"``
(``pipeline.ssm.labels.label_text``); the negative prompt is ``"no {category}"``. A category
without an approved IKI entry is prompted by its name alone, and says so (``knowledge`` False).

Retrieval texts are the label texts of the studies' present findings, severity and location
included, the texts the model was trained to match.
"""

from __future__ import annotations

from dataclasses import dataclass

from db.queries import LabelRow
from pipeline.ssm.labels import label_text


@dataclass(frozen=True)
class Prompt:
    category: str
    positive: str
    negative: str
    knowledge: bool  # an approved IKI explanation is part of the positive prompt


def spoken(category: str) -> str:
    return category.replace("_", " ")


def category_prompts(categories: list[str], explanations: dict[tuple[str, str], str]
                     ) -> list[Prompt]:
    out = []
    for c in categories:
        expl = explanations.get((c, ""), "")
        out.append(Prompt(c, label_text(c, None, None, None, expl), f"no {spoken(c)}",
                          bool(expl)))
    return out


def explanation_for(row: LabelRow, explanations: dict[tuple[str, str], str]) -> str:
    """The IKI text of a finding: a severity or location subclass entry where one exists
    (issue 8, "SSM"), else the category's own."""
    for sub in (f"severity:{row.severity}" if row.severity else None,
                f"region:{row.region}" if row.region else None, ""):
        if sub is not None and (row.category, sub) in explanations:
            return explanations[row.category, sub]
    return ""


def finding_text(row: LabelRow, explanations: dict[tuple[str, str], str]) -> str:
    return label_text(row.category, row.severity, row.side, row.region,
                      explanation_for(row, explanations))
