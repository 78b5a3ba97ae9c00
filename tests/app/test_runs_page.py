"""AppTest of the Runs page: the runs table, training curves from metrics.jsonl, AUC bars with
seen/unseen marked, ROC curves, held-out figures, and two runs side by side."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from curation_app import state
from db.engine import session_scope
from tests.factories import PAGES, make_training_run, run_page


def _values(v) -> list:
    """A plotly trace array: plotly >= 6 sends numbers as base64 typed arrays."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"]).tolist()
    return list(v)


def _category(auc, n_pos, seen):
    return {"seen": seen, "n_pos": n_pos, "n_neg": 50, "auc": auc, "f1": 0.5, "accuracy": 0.8,
            "roc": {"fpr": [0.0, 0.2, 1.0], "tpr": [0.0, auc, 1.0]}}


def _evaluation(shift=0.0):
    return {"split": "test", "n_studies": 80, "labels": "truth:truth.jsonl",
            "categories": {"cardiomegaly": _category(0.91 + shift, 30, True),
                           "pleural_effusion": _category(0.88 + shift, 25, True),
                           "pneumothorax": _category(0.55 + shift, 22, False)},
            "unseen": {"pneumothorax": {"n_pos": 22, "auc": 0.55, "auc_abnormal": 0.41,
                                        "nearest_seen": "pleural_effusion", "nearest_auc": 0.6,
                                        "vs_nearest": -0.05, "vs_nearest_abnormal": -0.1}},
            "mean": {"auc_seen": 0.895 + shift, "auc_unseen": 0.55, "min_positives": 20},
            "multi_label": {"macro": 0.78, "micro": 0.8, "n_categories": 3},
            "retrieval": {"image_to_text": {"R@1": 0.1, "R@5": 0.3, "R@10": 0.5},
                          "text_to_image": {"R@1": 0.2, "R@5": 0.4, "R@10": 0.6}}}


def _write_run_dir(root: Path, name: str, steps: int = 5, evaluation: dict | None = None) -> Path:
    run_dir = root / "runs" / name
    (run_dir / "checkpoints").mkdir(parents=True)
    lines = [json.dumps({"step": s, "epoch": 0, "loss": 2.0 / (s + 1), "lr": 1e-3 * s,
                         "images_per_s": 100.0}) for s in range(1, steps + 1)]
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n{\"step\": 9, \"lo")  # torn tail
    if evaluation is not None:
        (run_dir / "metrics.json").write_text(json.dumps(evaluation))
    return run_dir


def test_no_runs_says_how_to_make_one(app_store):
    at = run_page("runs")
    assert any("No training run yet" in i.value for i in at.info)


def test_one_run_with_curves_bars_roc_and_unseen_figures(app_store, data_dir):
    run_dir = _write_run_dir(data_dir, "ssm-a")
    with session_scope(app_store) as s:
        make_training_run(s, name="ssm-a", config={"model": "tiny-rn", "loss": "ssm",
                                                   "image_size": 64, "out": str(run_dir)},
                          metrics={"final_loss": 0.4, "steps": 5, "evaluation": _evaluation()},
                          checkpoint_path=str(run_dir / "checkpoints" / "step-5.pt"))
    at = run_page("runs")
    table = at.dataframe[0].value
    assert table.iloc[0]["name"] == "ssm-a" and table.iloc[0]["steps"] == 5
    assert table.iloc[0]["mean_auc"] == 0.895
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Mean AUC (seen, n+ ≥ 20)"] == "0.895" and metrics["Unseen AUC"] == "0.550"
    charts = {c.proto.id: json.loads(c.proto.spec) for c in at.get("plotly_chart")}
    assert len(charts) == 4  # loss, lr, AUC bars, ROC
    specs = list(charts.values())
    loss = next(s for s in specs if s["layout"]["title"]["text"] == "Loss")
    assert _values(loss["data"][0]["x"]) == [1, 2, 3, 4, 5]  # the torn last line is skipped
    bars = next(s for s in specs if s["data"][0]["type"] == "bar")
    kinds = {t["name"]: _values(t["y"]) for t in bars["data"]}
    assert kinds["unseen"] == ["pneumothorax (n+ 22)"] and len(kinds["seen"]) == 2
    unseen = at.dataframe[1].value
    assert unseen.iloc[0]["category"] == "pneumothorax" and unseen.iloc[0]["auc_abnormal"] == 0.41
    # ROC: the unseen category is drawn by default, with its AUC in the legend
    roc = next(s for s in specs if any(t.get("name", "").startswith("pneumothorax (0.55")
                                       for t in s["data"]))
    assert any(t.get("name", "").startswith("cardiomegaly") for t in roc["data"])
    ms = at.multiselect(key=f"{state.KEY_RUN_ROC}_1")
    ms.set_value(["pneumothorax"]).run()
    assert not at.exception
    roc_now = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                   if json.loads(c.proto.spec)["layout"]["xaxis"]["title"]["text"] == "fpr")
    assert [t.get("name") for t in roc_now["data"] if t.get("showlegend") is not False] == [
        "pneumothorax (0.55)"]


def test_two_runs_side_by_side_and_a_run_not_evaluated(app_store, data_dir, monkeypatch):
    monkeypatch.chdir(data_dir)  # runs/NAME found under the working directory by name alone
    _write_run_dir(data_dir, "hard-b", evaluation=_evaluation(shift=-0.1))  # file only
    _write_run_dir(data_dir, "fresh-c")
    with session_scope(app_store) as s:
        a = make_training_run(s, name="ssm-a", metrics={"evaluation": _evaluation()})
        b = make_training_run(s, name="hard-b", config={"loss": "hard"})
        make_training_run(s, name="fresh-c", status="running")
    at = AppTest.from_file(str(PAGES / "runs.py"), default_timeout=30)
    at.session_state[state.KEY_RUN_A] = a.id
    at.session_state[state.KEY_RUN_B] = b.id
    at.run()
    assert not at.exception, at.exception
    assert [h.value for h in at.subheader][:3] == ["ssm-a vs hard-b", "ssm-a", "hard-b"]
    compare = json.loads(at.get("plotly_chart")[0].proto.spec)
    runs: dict[str, list] = {}  # traces are per (run, seen|unseen)
    for trace in compare["data"]:
        runs.setdefault(trace["name"].split(",")[0], []).extend(_values(trace["y"]))
    assert set(runs) == {"ssm-a", "hard-b"}
    # hard-b's evaluation came from its metrics.json (no row evaluation in this store)
    assert sorted(runs["hard-b"]) == pytest.approx(sorted([0.81, 0.78, 0.45]))
    at.selectbox(key=state.KEY_RUN_A).set_value(3).run()  # fresh-c, never evaluated
    at.selectbox(key=state.KEY_RUN_B).set_value(None).run()
    assert any("Not evaluated yet" in i.value for i in at.info)
    assert len(at.subheader) == 1
