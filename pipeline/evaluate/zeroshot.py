"""Zero-shot figures from embeddings: no model, no I/O, so the whole report is testable on
hand-made vectors. ``pipeline.evaluate.run`` feeds it the run's embeddings.

Report layout (``runs/NAME/metrics.json``, also TrainingRun.metrics_json["evaluation"]):

    categories  {cat: {seen, n_pos, n_neg, n_uncertain, auc, auc_positive_prompt, f1, accuracy,
                       precision, recall, threshold, roc: {fpr, tpr}}}
                every category with a positive and a negative among the scored studies;
                auc_positive_prompt ranks by the positive prompt's cosine alone (is the image
                side or the negative prompt the weak part? ARCHITECTURE.md, "SSM")
    unseen      {cat: {auc, auc_abnormal, nearest_seen, nearest_cosine, nearest_auc,
                       nearest_auc_abnormal, vs_nearest, vs_nearest_abnormal, n_pos,
                       n_neg_abnormal}}, see ``metrics.unseen_figures``
    mean        {auc_seen, f1_seen, accuracy_seen, n_seen (seen categories with >= min_positives
                 positives), auc_all, auc_unseen, min_positives}
    multi_label {macro, micro, n_categories}
    retrieval   {image_to_text: {R@1, R@5, R@10}, text_to_image: {...}, n_image_queries,
                 n_text_queries, n_texts}
"""

from __future__ import annotations

import numpy as np

from pipeline.evaluate import metrics as m
from pipeline.evaluate.labels import EvalLabels


def scored_categories(labels: EvalLabels) -> list[str]:
    """Categories with at least one positive and one negative: the ones an AUC exists for."""
    out = []
    for c in labels.categories:
        n_pos, n_neg, _ = m.count_classes(labels.column(c))
        if n_pos and n_neg:
            out.append(c)
    return out


def _mean(values: list[float | None]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _category(y: np.ndarray, score: np.ndarray, cos_pos: np.ndarray, seen: bool) -> dict:
    n_pos, n_neg, n_unc = m.count_classes(y)
    op = m.max_f1_point(y, score)
    return {"seen": seen, "n_pos": n_pos, "n_neg": n_neg, "n_uncertain": n_unc,
            "auc": m.auc(y, score), "auc_positive_prompt": m.auc(y, cos_pos),
            "f1": op and op.f1, "accuracy": op and op.accuracy, "precision": op and op.precision,
            "recall": op and op.recall, "threshold": op and op.threshold,
            "roc": m.roc_points(y, score)}


def _unseen(labels: EvalLabels, cats: list[str], score: np.ndarray, pos_emb: np.ndarray,
            seen: set[str]) -> dict:
    seen_cols = [j for j, c in enumerate(cats) if c in seen]
    out = {}
    for j, c in enumerate(cats):
        if c in seen or not seen_cols:
            continue
        k, cos = m.nearest_by_cosine(pos_emb[j], pos_emb[seen_cols])
        near = seen_cols[k]
        figures = m.unseen_figures(labels.column(c), score[:, j], labels.others_shown(c),
                                   score[:, near])
        out[c] = {**figures, "nearest_seen": cats[near], "nearest_cosine": cos}
    return out


def zero_shot_report(labels: EvalLabels, image_emb: np.ndarray, cats: list[str],
                     pos_emb: np.ndarray, neg_emb: np.ndarray, seen: set[str],
                     min_positives: int = 20) -> dict:
    """Per-category, unseen, mean and multi-label figures.

    ``image_emb``: (N, D) L2-normalised, rows as ``labels.study_ids``; ``cats``: the scored
    categories, with ``pos_emb`` / ``neg_emb`` (C, D) the L2-normalised embeddings of their
    positive and negative prompts.
    """
    cos_pos, cos_neg = image_emb @ pos_emb.T, image_emb @ neg_emb.T  # (N, C) cosines
    score = m.prompt_softmax(cos_pos, cos_neg)  # (N, C) in (0, 1)
    Y = np.stack([labels.column(c) for c in cats], axis=1) if cats else np.zeros((0, 0))
    per = {c: _category(Y[:, j], score[:, j], cos_pos[:, j], c in seen)
           for j, c in enumerate(cats)}
    counted = [c for c in cats if c in seen and per[c]["n_pos"] >= min_positives]
    mean = {"auc_seen": _mean([per[c]["auc"] for c in counted]),
            "f1_seen": _mean([per[c]["f1"] for c in counted]),
            "accuracy_seen": _mean([per[c]["accuracy"] for c in counted]),
            "n_seen": len(counted), "min_positives": min_positives,
            "auc_all": _mean([v["auc"] for v in per.values()]),
            "auc_unseen": _mean([v["auc"] for c, v in per.items() if c not in seen])}
    return {"categories": per, "unseen": _unseen(labels, cats, score, pos_emb, seen),
            "mean": mean, "multi_label": m.multilabel_auc(Y, score) if cats else None}


def retrieval_texts(labels: EvalLabels, text_of) -> tuple[list[str], np.ndarray]:
    """Distinct label texts of the studies' present findings, and the (N, T) bool matrix of
    which study carries which; ``text_of(LabelRow) -> str``."""
    per_study = [{text_of(r) for r in labels.findings[sid] if r.presence == "present"}
                 for sid in labels.study_ids]
    texts = sorted(set().union(*per_study)) if per_study else []
    col = {t: j for j, t in enumerate(texts)}
    relevant = np.zeros((len(per_study), len(texts)), bool)
    for i, ts in enumerate(per_study):
        relevant[i, [col[t] for t in ts]] = True
    return texts, relevant


def retrieval_report(image_emb: np.ndarray, text_emb: np.ndarray, relevant: np.ndarray) -> dict:
    return {**m.retrieval(image_emb, text_emb, relevant), "n_texts": int(relevant.shape[1])}
