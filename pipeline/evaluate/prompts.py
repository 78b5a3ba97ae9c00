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
from pipeline.ssm.labels import explanation_for, label_text, negation_text


@dataclass(frozen=True)
class Prompt:
    category: str
    positive: str
    negative: str
    knowledge: bool  # an approved IKI explanation is part of the positive prompt


def category_prompts(categories: list[str], explanations: dict[tuple[str, str], str]
                     ) -> list[Prompt]:
    out = []
    for c in categories:
        expl = explanations.get((c, ""))
        out.append(Prompt(c, label_text(c, explanation=expl), negation_text(c), bool(expl)))
    return out


def finding_text(row: LabelRow, explanations: dict[tuple[str, str], str]) -> str:
    """A finding's label text exactly as training builds it (the most specific IKI entry)."""
    return label_text(row.category, row.severity, row.side, row.region,
                      explanation_for(explanations, row.category, row.severity, row.region))
