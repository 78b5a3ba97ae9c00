"""python -m pipeline.train on a tiny store: outputs, caches, inference API, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from sqlmodel import Session, select

from db.models import FindingStatus, Study, TrainingRun
from model import build_model
from pipeline.train import cli
from pipeline.train.inference import embed_studies, embed_texts, load_run
from tests.factories import make_training_store

TINY = ("--model", "tiny-rn", "--epochs", "2", "--batch-size", "6", "--workers", "0",
        "--no-progress", "--device", "cpu", "--log-every", "1")


def train(db_url: str, data_dir: Path, out: Path, *extra: str) -> int:
    return cli.main(["--db", db_url, "--data-dir", str(data_dir), "--out", str(out), *TINY,
                     *extra])


@pytest.fixture
def store(engine, data_dir):
    with Session(engine) as s:
        studies = make_training_store(s, data_dir, n=24)  # 20 train, 4 test
        s.commit()
        return {"test": [st.id for st in studies if st.split == "test"]}


def runs(engine) -> list[TrainingRun]:
    with Session(engine) as s:
        return list(s.exec(select(TrainingRun)))


def test_a_tiny_run_writes_its_run_dir_and_training_run(db_url, engine, data_dir, store,
                                                        tmp_path, capsys):
    out = tmp_path / "runs" / "tiny"
    assert train(db_url, data_dir, out, "--negatives", "use", "--save-every", "4") == 0
    summary = capsys.readouterr().out
    assert "run tiny: 6 steps (2 epochs)" in summary and "images/s" in summary
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "tiny-rn" and config["negatives"] == "use" and config["lr"] == 5e-4
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert {"step", "epoch", "loss", "lr", "images_per_s", "mse", "bce"} <= set(rows[0])
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert (out / "checkpoints" / "latest.txt").read_text().strip() == "step-6.pt"
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["step-4.pt", "step-6.pt"]
    meta = json.loads((out / "run.json").read_text())
    assert meta["counts"]["studies"] == 20  # the 4 test-split studies never train
    [run] = runs(engine)
    assert run.name == "tiny" and run.status == "finished" and run.finished_at is not None
    assert run.checkpoint_path == str(out / "checkpoints" / "step-6.pt")
    assert json.loads(run.metrics_json)["steps"] == 6
    assert json.loads(run.config_json)["model"] == "tiny-rn"
    assert run.snapshot_sha256 == meta["snapshot_sha256"] and meta["training_run_id"] == run.id


def test_pixel_cache_is_built_once_and_reused(db_url, data_dir, store, tmp_path):
    assert train(db_url, data_dir, tmp_path / "a") == 0
    [cache] = (data_dir / "cache").glob("pixels-*-32.npy")
    built = cache.stat().st_mtime_ns
    assert "built" in (tmp_path / "a" / "train.log").read_text()
    assert train(db_url, data_dir, tmp_path / "b", "--lr", "0.001") == 0
    assert cache.stat().st_mtime_ns == built
    log = (tmp_path / "b" / "train.log").read_text()
    assert "reused" in log and "SSM embeddings from cache" in log
    assert np.load(cache, mmap_mode="r").shape == (20, 32, 32)


def test_inference_api_embeds_studies_and_texts(db_url, data_dir, store, tmp_path):
    out = tmp_path / "run"
    assert train(db_url, data_dir, out, "--loss", "infonce") == 0
    run = load_run(out)
    ckpt = torch.load(out / "checkpoints" / "step-6.pt", weights_only=True)
    for key, value in ckpt["state_dict"].items():
        assert torch.equal(run.encoder.clip.state_dict()[key], value), key
    assert run.config["loss"] == "infonce" and run.training_run_id is not None
    assert not run.encoder.training
    ids = store["test"]
    vectors = embed_studies(run, db_url, ids, batch_size=4, progress=False)
    assert vectors.shape == (4, 64) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(vectors[2:3], embed_studies(run, db_url, [ids[2]],
                                                           progress=False), atol=1e-6)
    texts = embed_texts(run, ["pleural effusion.", "no pleural effusion"])
    assert texts.shape == (2, 64)
    np.testing.assert_allclose(np.linalg.norm(texts, axis=1), 1, atol=1e-5)


def test_an_unreadable_image_is_skipped_counted_and_logged(db_url, engine, data_dir, store,
                                                           tmp_path, capsys):
    with Session(engine) as s:
        study = s.exec(select(Study).where(Study.split == "train")).first()
        bad = study.id
    from db.queries import list_study_images

    with Session(engine) as s:
        image = list_study_images(session=s, study_ids=[bad])[bad]
    (data_dir / image.path).write_bytes(b"not a png")
    assert train(db_url, data_dir, tmp_path / "r") == 0
    assert "1 images skipped" in capsys.readouterr().out
    log = (tmp_path / "r" / "train.log").read_text()
    assert f"skipped image {image.image_id}" in log and "not a readable PNG/JPEG" in log


def _fails(capsys, rc: int, *needles: str) -> None:
    captured = capsys.readouterr()
    assert rc == 2
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert "Traceback" not in captured.err
    for needle in needles:
        assert needle in captured.err


def _nothing_stored(engine, out: Path) -> None:
    assert runs(engine) == [] and not out.exists()


def test_no_trainable_findings(db_url, engine, data_dir, tmp_path, capsys):
    with Session(engine) as s:
        make_training_store(s, data_dir, n=8, status=FindingStatus.proposed)
        s.commit()
    _fails(capsys, train(db_url, data_dir, tmp_path / "x"), "no trainable findings",
           "--include-proposed would add 9 proposed findings")
    _nothing_stored(engine, tmp_path / "x")


def test_a_category_without_approved_knowledge(db_url, engine, data_dir, tmp_path, capsys):
    with Session(engine) as s:
        make_training_store(s, data_dir, n=24, knowledge=False)
        s.commit()
    _fails(capsys, train(db_url, data_dir, tmp_path / "x"),
           "cardiomegaly, pleural_effusion, pneumothorax", "--allow-missing-knowledge")
    _nothing_stored(engine, tmp_path / "x")
    assert train(db_url, data_dir, tmp_path / "x", "--allow-missing-knowledge") == 0
    texts = json.loads((tmp_path / "x" / "labels.json").read_text())["texts"]
    assert sorted(texts) == ["mild left pleural effusion.", "moderate cardiomegaly.", "no finding",
                             "right pneumothorax."]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_cuda_without_a_gpu(db_url, engine, data_dir, store, tmp_path, capsys):
    _fails(capsys, train(db_url, data_dir, tmp_path / "x", "--device", "cuda"),
           "--device cuda: no CUDA GPU")
    _nothing_stored(engine, tmp_path / "x")


@pytest.mark.parametrize("content,needle", [
    ({"lrr": 0.1}, "unknown key 'lrr'"),
    ({"epochs": "three"}, "epochs must be int"),
    ({"loss": "focal"}, "loss must be one of"),
])
def test_bad_config_file_names_the_key(db_url, engine, data_dir, store, tmp_path, capsys,
                                       content, needle):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(content))
    _fails(capsys, train(db_url, data_dir, tmp_path / "x", "--config", str(path)), needle)
    _nothing_stored(engine, tmp_path / "x")


def test_a_config_file_sets_fields(db_url, data_dir, store, tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("optimizer: sgd\nlr: 0.01\nholdout: [pneumothorax]\n")
    assert train(db_url, data_dir, tmp_path / "x", "--config", str(path)) == 0
    config = json.loads((tmp_path / "x" / "config.json").read_text())
    assert config["optimizer"] == "sgd" and config["holdout"] == ["pneumothorax"]
    assert not any("pneumothorax" in t
                   for t in json.loads((tmp_path / "x" / "labels.json").read_text())["texts"])


def test_sgd_restarts_its_cosine_every_cycle_stepped_per_batch(db_url, data_dir, store, tmp_path):
    path = tmp_path / "sgd.json"
    path.write_text(json.dumps({"optimizer": "sgd", "lr": 0.01, "restart_epochs": 1}))
    assert train(db_url, data_dir, tmp_path / "x", "--config", str(path)) == 0
    lrs = [json.loads(x)["lr"] for x in (tmp_path / "x" / "metrics.jsonl").read_text().splitlines()]
    # 3 steps per epoch = one cycle (T_0); lr logged after each step's scheduler step
    assert lrs == pytest.approx([0.0075, 0.0025, 0.01, 0.0075, 0.0025, 0.01])


def test_max_minutes_stops_with_a_checkpoint_that_resumes(db_url, engine, data_dir, store,
                                                          tmp_path, capsys):
    out = tmp_path / "x"
    assert train(db_url, data_dir, out, "--max-minutes", "0.00001") == 0
    assert "(stopped at --max-minutes)" in capsys.readouterr().out
    assert (out / "checkpoints" / "latest.txt").read_text().strip() == "step-1.pt"
    [run] = runs(engine)
    assert run.status == "finished" and json.loads(run.metrics_json)["stopped"] == "max_minutes"
    assert train(db_url, data_dir, out, "--resume", "latest", "--max-minutes", "60") == 0
    assert (out / "checkpoints" / "latest.txt").read_text().strip() == "step-6.pt"


def test_pretrained_checkpoint_of_another_architecture(db_url, engine, data_dir, store,
                                                       tmp_path, capsys):
    path = tmp_path / "small.pt"
    torch.save(build_model("small-rn").clip.state_dict(), path)
    _fails(capsys, train(db_url, data_dir, tmp_path / "x", "--pretrained", str(path)),
           "another architecture than tiny-rn")
    _nothing_stored(engine, tmp_path / "x")


def test_a_locked_minilm_text_tower_trains_only_its_projection(db_url, data_dir, store,
                                                               tmp_path, capsys):
    out = tmp_path / "lit"
    assert train(db_url, data_dir, out, "--hf-text", "minilm", "--lock-text") == 0
    before = build_model("tiny-rn", hf_text="minilm").clip.state_dict()
    after = torch.load(out / "checkpoints" / "step-6.pt", weights_only=True)["state_dict"]
    transformer = [k for k in before if k.startswith("text.transformer.")]
    assert transformer and all(torch.equal(before[k], after[k]) for k in transformer)
    assert not torch.equal(before["text.proj.weight"], after["text.proj.weight"])
    capsys.readouterr()
    _fails(capsys, train(db_url, data_dir, tmp_path / "x", "--lock-text"),
           "lock_text needs a Hugging Face text tower")


def test_pretrained_from_an_earlier_run(db_url, data_dir, store, tmp_path):
    assert train(db_url, data_dir, tmp_path / "a") == 0
    ckpt = tmp_path / "a" / "checkpoints" / "step-6.pt"
    assert train(db_url, data_dir, tmp_path / "b", "--pretrained", str(ckpt), "--epochs", "1") == 0


def test_resume_refuses_a_changed_config_and_an_existing_run(db_url, engine, data_dir, store,
                                                             tmp_path, capsys):
    out = tmp_path / "r"
    assert train(db_url, data_dir, out) == 0
    capsys.readouterr()
    _fails(capsys, train(db_url, data_dir, out), "already holds a run", "--resume latest")
    _fails(capsys, train(db_url, data_dir, out, "--resume", "latest", "--lr", "0.1",
                         "--epochs", "3"), "config differs", "epochs 2 -> 3", "lr 0.0005 -> 0.1")
    _fails(capsys, train(db_url, data_dir, out, "--resume", str(tmp_path / "none.pt")),
           "no such checkpoint")
    assert len(runs(engine)) == 1
