"""The labels an evaluation scores against: a split's curated findings, or a demo truth file.

Per category a study's findings fold the CheXpert way (ARCHITECTURE.md, "Data model"): present
if any finding of that category is present, else "not scored" if one is uncertain, else 0
(absent, or never mentioned: a labelled report that does not name a finding is negative for it).
Uncertain studies are left out of that category's figures, as CheXzero's evaluation does.

Two sources:
  * the store (default): the split's labelled studies (``db.queries.list_labelled_studies``:
    fully reviewed reports, or extracted ones with ``--include-proposed``) and their findings of
    the training statuses (accepted / edited / added, + proposed on request);
  * ``--truth truth.jsonl`` of ``python -m pipeline.demo``: the exact findings each phantom was
    drawn with. Its study ids are the manifest's source ids, which ingest stored only as salted
    pseudonyms (``pipeline.ingest.deid``), so each id is matched by recomputing its study key
    with the same salt for every dataset name in the store; no id is stored or printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from db import queries
from db.engine import session_scope
from db.models import Presence
from db.queries import LabelRow
from pipeline import vocab
from pipeline.evaluate.metrics import NOT_SCORED
from pipeline.ingest.deid import Pseudonymizer

TRUTH_STATUS = "truth"  # the status a demo truth finding carries in a LabelRow


class LabelError(ValueError):
    """Labels that cannot be scored: the message is the one line the CLI prints."""


@dataclass(frozen=True)
class EvalLabels:
    study_ids: list[int]  # store ids; row order of ``matrix``
    categories: tuple[str, ...]  # column order of ``matrix``: every vocabulary category
    matrix: np.ndarray  # (N, C) int8: 1 present, 0 absent / not mentioned, -1 uncertain
    findings: dict[int, list[LabelRow]]  # study id -> its label findings (all presences)
    source: str  # "store" | "truth:<file name>"
    unmatched: int = 0  # truth studies of the split that the store lacks (or lacks an image of)

    def column(self, category: str) -> np.ndarray:
        return self.matrix[:, self.categories.index(category)]

    def others_shown(self, category: str) -> np.ndarray:
        """(N,) bool: the study shows a finding (present or uncertain) of another category."""
        others = np.delete(self.matrix, self.categories.index(category), axis=1)
        return (others != 0).any(axis=1)


def fold(rows: Iterable[LabelRow], study_ids: list[int], categories: tuple[str, ...]
         ) -> np.ndarray:
    """(N, C) CheXpert fold of findings: present beats uncertain beats absent."""
    row_of = {sid: i for i, sid in enumerate(study_ids)}
    col_of = {c: j for j, c in enumerate(categories)}
    out = np.zeros((len(study_ids), len(categories)), np.int8)
    for r in rows:
        i, j = row_of.get(r.study_id), col_of.get(r.category)
        if i is None or j is None:
            continue
        if r.presence == Presence.present:
            out[i, j] = 1
        elif r.presence == Presence.uncertain and out[i, j] != 1:
            out[i, j] = NOT_SCORED
    return out


def _assemble(study_ids: list[int], rows: list[LabelRow], source: str, unmatched: int = 0
              ) -> EvalLabels:
    categories = vocab.category_ids()
    by_study: dict[int, list[LabelRow]] = {sid: [] for sid in study_ids}
    for r in rows:
        by_study[r.study_id].append(r)
    return EvalLabels(study_ids, categories, fold(rows, study_ids, categories), by_study,
                      source, unmatched)


def labels_from_store(db_url: str, split: str, include_proposed: bool = False) -> EvalLabels:
    with session_scope(db_url) as session:
        ids = queries.list_labelled_studies(split, session=session,
                                            include_proposed=include_proposed)
        if not ids:
            hint = "" if include_proposed else " (--include-proposed also scores unreviewed extractions)"
            raise LabelError(f"no labelled {split} studies with an image in the store{hint}")
        rows = queries.list_split_findings(ids, session=session,
                                           include_proposed=include_proposed)
    return _assemble(ids, rows, "store")


def read_truth(path: Path) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except FileNotFoundError:
        raise LabelError(f"--truth {path}: no such file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LabelError(f"--truth {path}: not a JSON-lines truth file ({exc})") from None


def labels_from_truth(path: Path, db_url: str, split: str, salt: str) -> EvalLabels:
    lines = [t for t in read_truth(path) if t.get("split") == split]
    if not lines:
        raise LabelError(f"--truth {path}: no study of split {split!r}")
    pseudo = Pseudonymizer(salt)
    with session_scope(db_url) as session:
        store_id: dict[str, int] = {}
        for dataset in queries.list_datasets(session=session):
            keys = {pseudo.study_key(dataset, t["study_id"]): t["study_id"] for t in lines
                    if t["study_id"] not in store_id}
            found = queries.find_study_ids(list(keys), session=session)
            store_id.update({keys[k]: v for k, v in found.items()})
        with_image = queries.studies_with_images(list(store_id.values()), session=session)
    matched = [t for t in lines if store_id.get(t["study_id"]) in with_image]
    if not matched:
        raise LabelError(f"--truth {path}: none of its {len(lines)} {split} studies is in the "
                         "store with an image (another store, or ingested with another "
                         "MEDFILIP_SALT?)")
    ids = [store_id[t["study_id"]] for t in matched]
    rows = [LabelRow(sid, f["category"], f["presence"], f.get("severity"), f.get("side"),
                     f.get("region"), TRUTH_STATUS)
            for sid, t in zip(ids, matched, strict=True) for f in t.get("findings", [])]
    return _assemble(ids, rows, f"truth:{Path(path).name}", unmatched=len(lines) - len(matched))
