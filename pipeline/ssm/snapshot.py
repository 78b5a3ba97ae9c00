"""The label snapshot a run trains on: which studies, which image each, which label texts.

Labels are the settled findings of the chosen splits (accepted, edited and added by default;
``include_proposed`` adds the extractor's unreviewed ones; rejected findings never train):

- a present finding is a label text (see ``labels``); an uncertain one is dropped, or counted
  as present with ``uncertain="present"``;
- an absent finding is dropped (MedFILIP's choice, the default) or, with ``negatives="use"``,
  becomes the text "no {category}": pairing an image with its own report's negations teaches
  the negative zero-shot prompt, which ARCHITECTURE.md measured as the weak side of MiniLM
  prompts (0.81 -> 0.86 mean AUC with the SSM loss);
- a study with no present (or uncertain, or held-out) finding gets the label "no finding";
- findings of held-out categories never train, for unseen-category zero-shot tests.

Every label has an SSM group: its category, or a group of its own for "no {category}" and "no
finding", so a negation is never similar to the finding it denies.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field

from sqlmodel import Session

from db import queries
from db.queries import REVIEWED_STATUSES, StudyImage
from pipeline.ssm.labels import NO_FINDING, explanation_for, explanations, label_text, negation_text


class LabelError(ValueError):
    """Labels that cannot train (nothing trainable, knowledge missing): one clear sentence."""


@dataclass(frozen=True)
class LabelOptions:
    include_proposed: bool = False  # also train on the extractor's unreviewed findings
    negatives: str = "drop"  # drop | use: absent findings as "no {category}" texts
    uncertain: str = "drop"  # drop | present: what an uncertain finding counts as
    holdout: tuple[str, ...] = ()  # categories never trained on (unseen-category zero-shot)
    allow_missing_knowledge: bool = False  # a category without approved IKI trains on its name
    splits: tuple[str, ...] = ("train",)  # the store's splits to read (never "test" to train)


@dataclass(frozen=True)
class Label:
    text: str
    group: str  # SSM group: the category, "no <category>", or "no finding"


@dataclass(frozen=True)
class Example:
    image: StudyImage
    labels: tuple[int, ...]  # indices into LabelSnapshot.labels

    @property
    def study_id(self) -> int:
        return self.image.study_id


@dataclass(frozen=True)
class LabelSnapshot:
    labels: tuple[Label, ...]
    examples: tuple[Example, ...]
    sha256: str  # hash of (study, image, label texts) of every example
    missing_knowledge: tuple[str, ...] = ()  # categories trained without an IKI explanation
    counts: dict = field(default_factory=dict)  # findings used, studies skipped...

    @property
    def texts(self) -> list[str]:
        return [lb.text for lb in self.labels]

    @property
    def groups(self) -> list[str]:
        return [lb.group for lb in self.labels]


def _study_labels(rows, opts: LabelOptions, statuses: set[str], known,
                  missing: set[str]) -> tuple[list[Label], int]:
    """(labels of one study, findings used). ``covered``: something may be present, so the
    study is not "no finding" (held out, uncertain, or asserted by a finding not yet reviewed)."""
    labels, used, covered = [], 0, False
    for r in rows:
        if r.status not in statuses:
            covered |= r.status == "proposed" and r.presence != "absent"
            continue
        if r.category in opts.holdout:
            covered |= r.presence != "absent"
            continue
        if r.presence == "absent":
            if opts.negatives == "use":
                labels.append(Label(negation_text(r.category), f"no {r.category}"))
                used += 1
            continue
        covered = True
        if r.presence == "uncertain" and opts.uncertain != "present":
            continue
        explanation = explanation_for(known, r.category, r.severity, r.region)
        if (r.category, "") not in known:
            missing.add(r.category)
        labels.append(Label(label_text(r.category, r.severity, r.side, r.region, explanation),
                            r.category))
        used += 1
    if not covered:
        labels.append(Label(NO_FINDING, NO_FINDING))
    return list(dict.fromkeys(labels)), used


def _fail_if_untrainable(session: Session, opts: LabelOptions, used: int) -> None:
    if used:
        return
    counts = queries.count_findings_by_status(session=session, splits=opts.splits)
    reviewed = sum(counts.get(s, 0) for s in REVIEWED_STATUSES)
    hint = ("" if opts.include_proposed else
            f"; --include-proposed would add {counts.get('proposed', 0)} proposed findings")
    raise LabelError(f"no trainable findings in the {'/'.join(opts.splits)} split "
                     f"({reviewed} reviewed, {counts.get('rejected', 0)} rejected{hint})")


def build_snapshot(session: Session, opts: LabelOptions | None = None) -> LabelSnapshot:
    """Read the store into a label snapshot; LabelError when it cannot train."""
    opts = opts or LabelOptions()
    statuses = set(REVIEWED_STATUSES) | ({"proposed"} if opts.include_proposed else set())
    by_study: dict[int, list] = defaultdict(list)
    reviewed_studies: set[int] = set()
    for row in queries.list_label_rows(session=session, splits=opts.splits):
        by_study[row.study_id].append(row)
        if row.status != "proposed" or opts.include_proposed:
            reviewed_studies.add(row.study_id)  # a reviewer (or, opted in, the extractor) read it
    if opts.include_proposed:  # normal reports: the extractor found nothing
        reviewed_studies |= set(queries.list_extracted_studies_without_findings(
            session=session, splits=opts.splits))
    known, missing = explanations(session), set()
    per_study, used = {}, 0
    for sid in sorted(reviewed_studies):
        labels, n = _study_labels(by_study.get(sid, []), opts, statuses, known, missing)
        used += n
        if labels:  # empty when its only findings are held out
            per_study[sid] = labels
    _fail_if_untrainable(session, opts, used)
    if missing and not opts.allow_missing_knowledge:
        raise LabelError(f"no approved IKI explanation for {', '.join(sorted(missing))}: approve "
                         "one on the Knowledge page, or pass --allow-missing-knowledge to train "
                         "on the category name alone")
    images = queries.list_study_images(session=session, study_ids=list(per_study))
    vocab = sorted({lb for labels in per_study.values() for lb in labels},
                   key=lambda lb: (lb.group, lb.text))
    index = {lb: i for i, lb in enumerate(vocab)}
    examples = tuple(Example(images[sid], tuple(sorted(index[lb] for lb in labels)))
                     for sid, labels in per_study.items() if sid in images)
    digest = hashlib.sha256(json.dumps(
        [[e.study_id, e.image.pixel_sha256, [vocab[i].text for i in e.labels]] for e in examples]
    ).encode()).hexdigest()
    counts = {"studies": len(examples), "findings_used": used, "labels": len(vocab),
              "studies_without_image": len(per_study) - len(examples)}
    return LabelSnapshot(tuple(vocab), examples, digest, tuple(sorted(missing)), counts)
