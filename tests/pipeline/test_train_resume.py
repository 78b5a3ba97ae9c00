"""Resume: a run SIGKILLed mid-epoch and resumed with --resume latest ends with the weights of an
uninterrupted run; and DDP: two torchrun ranks on CPU (gloo) end with the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sqlmodel import Session, select

from db.models import TrainingRun
from pipeline.train import cli
from pipeline.train.loop import weight_digest
from tests.factories import make_training_store

ROOT = Path(__file__).resolve().parents[2]
# 20 train studies, micro-batches of 2, 2 per step: 5 steps per epoch, 10 in all; checkpoints
# at steps 4, 8 and 10
FLAGS = ("--model", "tiny-rn", "--epochs", "2", "--batch-size", "2", "--accum", "2",
         "--save-every", "4", "--log-every", "1", "--workers", "0", "--no-progress",
         "--device", "cpu", "--negatives", "use", "--texts-per-image", "2")
# Runs pipeline.train in a child that SIGKILLs itself in the middle of step 7 (mid-epoch 2,
# after the step's first micro-batch): the step-4 checkpoint is the newest one on disk.
KILLER = """
import os, signal, sys
from pipeline.train import cli, loop
calls = [0]
real = loop.forward_loss
def forward_loss(*a, **k):
    calls[0] += 1
    if calls[0] == 13:  # micro-batch 13 = step 7's first
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*a, **k)
loop.forward_loss = forward_loss
sys.exit(cli.main(sys.argv[1:]))
"""


def child_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def store(engine, data_dir):
    with Session(engine) as s:
        make_training_store(s, data_dir, n=24)
        s.commit()


def final_weights(out: Path) -> dict[str, torch.Tensor]:
    latest = (out / "checkpoints" / "latest.txt").read_text().strip()
    return torch.load(out / "checkpoints" / latest, weights_only=True)["state_dict"]


@pytest.mark.slow
def test_a_killed_run_resumes_exactly(db_url, data_dir, store, tmp_path):
    common = ["--db", db_url, "--data-dir", str(data_dir), *FLAGS]
    assert cli.main([*common, "--out", str(tmp_path / "straight")]) == 0

    killed = tmp_path / "killed"
    child = subprocess.run([sys.executable, "-c", KILLER, *common, "--out", str(killed)],
                           cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300)
    assert child.returncode == -9, child.stderr[-2000:]
    assert (killed / "checkpoints" / "latest.txt").read_text().strip() == "step-4.pt"
    assert len((killed / "metrics.jsonl").read_text().splitlines()) == 6  # steps 5-6 are lost

    assert cli.main([*common, "--out", str(killed), "--resume", "latest"]) == 0
    assert "resumed at step 4 (epoch 0, micro-batch 8)" in (killed / "train.log").read_text()
    straight, resumed = final_weights(tmp_path / "straight"), final_weights(killed)
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6, msg=key)
    steps = [json.loads(x)["step"] for x in (killed / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))  # each step logged once, the killed tail dropped
    losses = [json.loads(x)["loss"] for x in (tmp_path / "straight" / "metrics.jsonl")
              .read_text().splitlines()]
    resumed_losses = [json.loads(x)["loss"] for x in (killed / "metrics.jsonl")
                      .read_text().splitlines()]
    assert resumed_losses == pytest.approx(losses, abs=1e-6)


@pytest.mark.slow
def test_two_torchrun_ranks_on_cpu_end_with_the_same_weights(db_url, engine, data_dir, store,
                                                             tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "pipeline.train", "--db", db_url, "--data-dir", str(data_dir), "--out",
           str(out), *FLAGS]
    child = subprocess.run(cmd, cwd=ROOT, env=child_env(), capture_output=True, text=True,
                           timeout=600)
    assert child.returncode == 0, child.stderr[-3000:]
    assert child.stdout.count("run ddp:") == 1  # rank 0 alone reports
    with Session(engine) as s:
        [run] = s.exec(select(TrainingRun)).all()
    metrics = json.loads(run.metrics_json)
    assert metrics["world_size"] == 2 and run.status == "finished"
    # 10 studies per rank, micro-batches of 2 x 2: 2 steps per epoch, 4 in all
    assert metrics["steps"] == 4
    digests = metrics["weight_sha256_per_rank"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert weight_digest(final_weights(out)) == digests[0]
