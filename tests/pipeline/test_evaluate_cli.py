"""``python -m pipeline.evaluate``: bad input gets one clear line and changes nothing; a tiny run
trained on a demo store is evaluated end to end against the store and against the demo truth."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from db.models import TrainingRun
from pipeline.evaluate import cli
from pipeline.train import cli as train_cli
from tests.factories import make_training_store


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err  # one line, never a traceback
    return err[0]


def test_missing_run_dir(db_url, tmp_path, capsys):
    assert cli.main(["--run", str(tmp_path / "runs" / "nope"), "--db", db_url]) == 1
    assert _error_line(capsys) == f"error: --run {tmp_path / 'runs' / 'nope'}: no such run directory"


def test_not_a_run_dir(db_url, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["--run", str(tmp_path / "empty"), "--db", db_url]) == 1
    assert "not a training run (no config.json)" in _error_line(capsys)


def test_no_labelled_studies(db_url, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"model": "tiny-rn"}))
    assert cli.main(["--run", str(run), "--db", db_url]) == 1
    line = _error_line(capsys)
    assert "no labelled test studies" in line and "--include-proposed" in line
    assert not (run / "metrics.json").exists()


def test_unknown_split_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.parse_args(["--run", "runs/x", "--split", "holdout"])
    assert exc.value.code == 2
    assert "invalid choice: 'holdout'" in capsys.readouterr().err


@pytest.fixture
def trained(db_url, engine, data_dir, tmp_path):
    """A tiny run trained on a 40-study store (8 test studies), pneumothorax held out."""
    with Session(engine) as s:
        make_training_store(s, data_dir, n=40)
        s.commit()
    out = tmp_path / "runs" / "tiny"
    assert train_cli.main(["--db", db_url, "--data-dir", str(data_dir), "--out", str(out),
                           "--model", "tiny-rn", "--epochs", "2", "--batch-size", "8",
                           "--workers", "0", "--no-progress", "--device", "cpu",
                           "--negatives", "use", "--holdout-category", "pneumothorax"]) == 0
    return out


def test_a_trained_run_end_to_end(db_url, engine, data_dir, trained, capsys, monkeypatch):
    monkeypatch.setenv("MEDFILIP_DATA_DIR", str(data_dir))
    capsys.readouterr()
    assert cli.main(["--run", str(trained), "--db", db_url, "--no-progress",
                     "--min-positives", "2"]) == 0
    out = capsys.readouterr().out
    assert "8 test studies (store)" in out and "UNSEEN" in out
    assert f"wrote {trained / 'metrics.json'} and TrainingRun" in out
    report = json.loads((trained / "metrics.json").read_text())
    cats = report["categories"]
    # every test case of the store cycles 4 cases: each category has 2 positives of 8
    assert {c: r["n_pos"] for c, r in cats.items()} == {
        "cardiomegaly": 2, "pleural_effusion": 2, "pneumothorax": 2}
    assert report["seen"] == ["cardiomegaly", "pleural_effusion"]
    assert report["unseen"]["pneumothorax"]["nearest_seen"] in report["seen"]
    assert report["unseen"]["pneumothorax"]["n_neg_abnormal"] == 4  # the effusion + cardio ones
    for r in cats.values():
        assert 0.0 <= r["auc"] <= 1.0 and r["roc"]["fpr"][-1] == 1.0
        assert 0.0 <= r["f1"] <= 1.0 and r["threshold"] is not None
    assert report["mean"]["n_seen"] == 2 and report["multi_label"]["n_categories"] == 3
    assert report["prompts"]["pleural_effusion"]["negative"] == "no pleural effusion"
    assert report["prompts"]["pleural_effusion"]["positive"].startswith("pleural effusion. what")
    rt = report["retrieval"]
    assert rt["n_texts"] == 3 and rt["n_image_queries"] == 6
    assert all(0.0 <= v <= 1.0 for v in rt["image_to_text"].values())
    with Session(engine) as s:
        row = s.exec(select(TrainingRun).where(TrainingRun.name == "tiny")).one()
    stored = json.loads(row.metrics_json)
    assert stored["steps"] > 0 and stored["evaluation"]["categories"].keys() == cats.keys()
    # a split without labels: one line, and the stored evaluation stays as it was
    assert cli.main(["--run", str(trained), "--db", db_url, "--split", "val"]) == 1
    assert "no labelled val studies" in _error_line(capsys)
    with Session(engine) as s:
        again = s.exec(select(TrainingRun).where(TrainingRun.name == "tiny")).one()
    assert again.metrics_json == row.metrics_json
