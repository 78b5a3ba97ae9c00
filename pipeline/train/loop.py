"""The training run, top to bottom: checks, labels, model, caches, optimizer, loop, checkpoint.

Every check that can refuse the run (labels, knowledge, model, checkpoint) happens before
anything is written: the run directory, the TrainingRun row and the caches come after.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from db import queries
from db.engine import session_scope
from model import build_model, hard_matrix
from pipeline.ssm import LabelOptions, build_snapshot, ssm_from_snapshot
from pipeline.train import dist
from pipeline.train.checkpoint import save_checkpoint
from pipeline.train.config import TrainConfig
from pipeline.train.data import (
    TrainData,
    draw_texts,
    epoch_order,
    make_batch,
    micro_batches_per_epoch,
)
from pipeline.train.dist import Dist, TrainError
from pipeline.train.pixels import pixel_cache
from pipeline.train.rundir import CONFIG, LABELS, RUN, RunDir
from pipeline.train.step import forward_loss


@dataclass(frozen=True)
class TrainEnv:
    out: Path  # the run directory; its name is the TrainingRun's name
    db_url: str
    data_dir: Path  # pixel files (Image.path is relative to it) and data/cache


@dataclass(frozen=True)
class TrainResult:
    run_dir: Path
    checkpoint: Path
    steps: int
    epochs: float
    final_loss: float
    images_per_s: float
    seconds: float
    stopped: str | None  # "max_minutes" when the time limit ended it early
    skipped_images: int
    training_run_id: int | None
    weight_digests: list[str]  # sha256 of the final weights, per rank


def label_options(cfg: TrainConfig) -> LabelOptions:
    return LabelOptions(include_proposed=cfg.include_proposed, negatives=cfg.negatives,
                        uncertain=cfg.uncertain, holdout=cfg.holdout,
                        allow_missing_knowledge=cfg.allow_missing_knowledge, splits=("train",))


def make_optimizer(cfg: TrainConfig, model: torch.nn.Module, steps_per_epoch: int, total: int):
    """AdamW + linear warmup + cosine, or SGD + CosineAnnealingWarmRestarts (MedFILIP), both
    stepped per optimizer step. Gains, biases, norms and the logit scale get no weight decay."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    flat = [p for n, p in named if p.ndim < 2 or "logit_" in n or ".bn" in n or ".ln" in n]
    flat_ids = {id(p) for p in flat}
    groups = [{"params": flat, "weight_decay": 0.0},
              {"params": [p for _, p in named if id(p) not in flat_ids],
               "weight_decay": cfg.weight_decay}]
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
        t0 = max(1, round(cfg.restart_epochs * steps_per_epoch))
        return opt, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0,
                                                                         eta_min=cfg.min_lr)
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    warm, floor = min(cfg.warmup_steps, max(total // 10, 1)), cfg.min_lr / cfg.lr

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def weight_digest(state_dict: dict) -> str:
    """sha256 over every tensor's name and bytes: equal digests, equal weights."""
    h = hashlib.sha256()
    for key, value in state_dict.items():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def rng_state(d: Dist) -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state(d.device) if d.device.type == "cuda" else None}


def _check_start(cfg: TrainConfig, env: TrainEnv, ckpt: dict | None, d: Dist, reuse_name: bool):
    """Everything that may refuse the run, before anything is written: (snapshot, encoder)."""
    with session_scope(env.db_url) as s:
        snapshot = build_snapshot(s, label_options(cfg))
        existing = queries.get_training_run_by_name(env.out.name, session=s)
    if ckpt is None and existing is not None and not reuse_name:
        raise TrainError(f"a training run named {env.out.name!r} is already in the store; "
                         "choose another --out or pass --resume latest")
    if ckpt is not None and ckpt["snapshot_sha256"] != snapshot.sha256:
        raise TrainError("--resume: the curated labels changed since that checkpoint "
                         f"(snapshot {ckpt['snapshot_sha256'][:12]} -> {snapshot.sha256[:12]}); "
                         "start a new run")
    if micro_batches_per_epoch(len(snapshot.examples), cfg.batch_size, d.world) < cfg.accum:
        raise TrainError(f"{len(snapshot.examples)} training studies make no full step of "
                         f"{cfg.batch_size} x {cfg.accum} x {d.world} images; lower --batch-size")
    encoder = build_model(cfg.model, None if ckpt else cfg.pretrained, cfg.image_size,
                          cfg.hf_text, init_logit_scale=cfg.logit_scale_start,
                          init_logit_bias=cfg.init_logit_bias, device=str(d.device))
    if cfg.lock_text:
        encoder.lock_text()
    if ckpt is not None:
        try:
            encoder.clip.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise TrainError(f"--resume: the checkpoint does not fit {cfg.model} "
                             f"({str(exc).splitlines()[0][:160]})") from exc
    return snapshot, encoder


def _rank0_first(d: Dist, make):
    """Rank 0 builds a cache, the others then read it."""
    if d.main:
        out = make()
    dist.barrier(d)
    if not d.main:
        out = make()
    return out


def _prepare_data(cfg, env, snapshot, encoder, d, run: RunDir) -> tuple[TrainData, int]:
    cache_dir = env.data_dir / "cache"
    if cfg.loss == "ssm":  # only the soft targets need the sentence encoder
        ssm = _rank0_first(d, lambda: ssm_from_snapshot(snapshot, cfg.sentence_encoder,
                                                        cache_dir))
        matrix = ssm.matrix
        targets = f"SSM embeddings {'from cache' if ssm.from_cache else 'computed'}"
    else:
        matrix, targets = hard_matrix(snapshot.groups), "multi-hot targets"
    images = [e.image for e in snapshot.examples]
    cache = _rank0_first(d, lambda: pixel_cache(images, env.data_dir, encoder.image_size,
                                                workers=cfg.workers,
                                                progress=cfg.progress and d.main))
    for row, why in sorted(cache.bad.items()):
        run.log(f"skipped image {images[row].image_id} ({images[row].path}): {why}")
    rows = np.asarray([r for r in range(len(images)) if r not in cache.bad], dtype=np.int64)
    if rows.size == 0:
        raise TrainError("no training image could be read (see train.log)")
    texts = encoder.tokenize(snapshot.texts).to(d.device)
    if cfg.lock_text:  # (L, width): the frozen tower runs once per label text, here
        texts = encoder.frozen_text_features(texts)
    data = TrainData(rows, [snapshot.examples[r].labels for r in rows], cache.pixels, texts,
                     torch.from_numpy(matrix).to(d.device))
    run.log(f"labels: {len(snapshot.texts)} texts, {len(rows)} studies "
            f"({len(cache.bad)} images skipped); {targets}; pixels {cache.path.name} "
            f"{'built' if cache.built else 'reused'}")
    return data, len(cache.bad)


def _start_run(cfg, env, snapshot, ckpt, d, run: RunDir) -> int | None:
    """Rank 0: the run's files and its TrainingRun row (status running)."""
    if not d.main:
        return None
    with session_scope(env.db_url) as s:
        run_id = queries.start_training_run(env.out.name, config=cfg.to_dict(),
                                            snapshot_sha256=snapshot.sha256, session=s)
    run.write(CONFIG, cfg.to_dict())
    run.write(RUN, {"data_dir": str(env.data_dir.resolve()), "snapshot_sha256": snapshot.sha256,
                    "training_run_id": run_id, "world_size": d.world, "counts": snapshot.counts,
                    "missing_knowledge": list(snapshot.missing_knowledge)})
    run.write(LABELS, {"texts": snapshot.texts, "groups": snapshot.groups,
                       "holdout": list(cfg.holdout)})
    if ckpt is not None:
        run.truncate_metrics(ckpt["step"])
        run.log(f"resumed at step {ckpt['step']} (epoch {ckpt['epoch']}, "
                f"micro-batch {ckpt['micro']})")
    return run_id


def train(cfg: TrainConfig, env: TrainEnv, ckpt: dict | None = None, *,
          reuse_name: bool = False) -> TrainResult:
    """Run (or, with ``ckpt``, continue exactly) one training run. ``reuse_name``: a run of that
    name that died before its first checkpoint starts over under the same TrainingRun row."""
    d = dist.setup(cfg.device)
    if d.device.type == "cpu":
        torch.set_flush_denormal(True)  # denormal floats make CPU kernels many times slower
    try:
        torch.manual_seed(cfg.seed)
        snapshot, encoder = _check_start(cfg, env, ckpt, d, reuse_name)
        run = RunDir(env.out, d.main)
        run_id = _start_run(cfg, env, snapshot, ckpt, d, run)
        try:
            data, skipped = _prepare_data(cfg, env, snapshot, encoder, d, run)
            result = _loop(cfg, env, encoder, data, snapshot.sha256, ckpt, d, run)
        except BaseException as exc:
            if run_id is not None:
                with session_scope(env.db_url) as s:
                    status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
                    queries.set_training_run_status(run_id, status, session=s)
            raise
        metrics = {"final_loss": result["loss"], "steps": result["step"],
                   "images_per_s": result["ips"], "stopped": result["stopped"],
                   "skipped_images": skipped, "epochs": result["epochs"],
                   "world_size": d.world, "weight_sha256_per_rank": result["digests"]}
        run.log(f"finished: {metrics}")
        if run_id is not None:
            with session_scope(env.db_url) as s:
                queries.finish_training_run(run_id, checkpoint_path=str(result["path"]),
                                            metrics=metrics, session=s)
        return TrainResult(env.out, result["path"], result["step"], result["epochs"],
                           result["loss"], result["ips"], result["seconds"], result["stopped"],
                           skipped, run_id, result["digests"])
    finally:
        dist.teardown(d)


def _loop(cfg, env, encoder, data, snapshot_sha, ckpt, d, run) -> dict:
    n_micro = micro_batches_per_epoch(len(data.rows), cfg.batch_size, d.world)
    steps_per_epoch = n_micro // cfg.accum
    total = steps_per_epoch * cfg.epochs
    opt, sched = make_optimizer(cfg, encoder, steps_per_epoch, total)
    start, elapsed = 0, 0.0
    if ckpt is not None:
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        own = ckpt["rng"][min(d.rank, len(ckpt["rng"]) - 1)]
        torch.set_rng_state(own["torch"])
        if own["cuda"] is not None and d.device.type == "cuda":
            torch.cuda.set_rng_state(own["cuda"], d.device)
        start, elapsed = ckpt["step"], ckpt["elapsed_s"]
    else:  # reseeded here, so whatever ran before (cache builds) cannot shift dropout draws
        torch.manual_seed(cfg.seed * 1_000_003 + 7919 * d.rank + 1)
    model = encoder
    if d.world > 1:
        model = DistributedDataParallel(encoder, device_ids=[d.device.index]
                                        if d.device.type == "cuda" else None)
    images_per_step = cfg.batch_size * cfg.accum * d.world
    all_texts = np.arange(len(data.texts), dtype=np.int64)  # (L,) with cfg.all_texts

    def checkpoint(step: int, loss: float) -> Path:
        epoch, k = divmod(step, steps_per_epoch)
        payload = {"config": cfg.to_dict(), "state_dict": encoder.clip.state_dict(),
                   "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                   "step": step, "epoch": epoch, "micro": k * cfg.accum,
                   "rng": dist.gather(d, rng_state(d)), "world_size": d.world,
                   "snapshot_sha256": snapshot_sha, "elapsed_s": elapsed + time.perf_counter() - t0,
                   "loss": loss}
        if not d.main:
            return Path()
        path = save_checkpoint(env.out, step, payload, cfg.keep_checkpoints)
        run.log(f"checkpoint {path.name}")
        return path

    bar = tqdm(total=total, initial=start, desc=env.out.name, unit="step",
               disable=not (cfg.progress and d.main), dynamic_ncols=True)
    t0 = t_log = time.perf_counter()
    order_epoch, order, losses, stopped, path, done = -1, None, [], None, None, start
    last_loss, ips = (ckpt["loss"] if ckpt else float("nan")), 0.0
    model.train()
    for step in range(start, total):
        epoch, k = divmod(step, steps_per_epoch)
        if epoch != order_epoch:  # (N / world,) this rank's order of the epoch
            order, order_epoch = epoch_order(len(data.rows), cfg.seed, epoch, d.rank, d.world), epoch
        opt.zero_grad(set_to_none=True)
        for a in range(cfg.accum):
            m = k * cfg.accum + a
            idx = order[m * cfg.batch_size:(m + 1) * cfg.batch_size]
            texts = all_texts if cfg.all_texts else draw_texts(
                [data.labels[i] for i in idx], cfg.texts_per_image, cfg.seed,
                epoch * n_micro + m, d.rank)
            batch = make_batch(data, idx, texts, d.device)
            sync = a == cfg.accum - 1 or d.world == 1
            with contextlib.nullcontext() if sync else model.no_sync():
                out = forward_loss(model, batch, data.matrix, cfg.loss, cfg.mse_weight,
                                   cfg.bce_weight, amp=cfg.amp)
                (out["loss"] / cfg.accum).backward()
            losses.append(float(out["loss"].detach()))
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(encoder.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        done = step + 1
        bar.update()
        if done % cfg.log_every == 0 or done == total:
            now = time.perf_counter()
            last_loss = dist.mean(d, float(np.mean(losses)))
            if not math.isfinite(last_loss):
                raise TrainError(f"the loss became {last_loss} by step {done}; lower --lr "
                                 "(the last good checkpoint stays in place)")
            ips = images_per_step * len(losses) / cfg.accum / max(now - t_log, 1e-9)
            row = {"step": done, "epoch": round(done / steps_per_epoch, 4), "loss": last_loss,
                   "lr": opt.param_groups[1]["lr"], "images_per_s": round(ips, 2),
                   "logit_scale": float(out["scale"]), "time_s": round(elapsed + now - t0, 3)}
            row.update({name: float(out[name]) for name in ("mse", "bce") if name in out})
            run.metrics(row)
            bar.set_postfix(loss=f"{last_loss:.4f}", img_s=f"{ips:.0f}")
            losses, t_log = [], now
        if cfg.max_minutes is not None and dist.mean(
                d, float(elapsed + time.perf_counter() - t0 > 60 * cfg.max_minutes)) > 0:
            stopped = "max_minutes"
        if done % cfg.save_every == 0 or done == total or stopped:
            path = checkpoint(done, last_loss)
        if stopped:
            break
    bar.close()
    dist.sync_buffers(d, encoder)
    if path is None:  # nothing left to train (resumed a finished run)
        path = checkpoint(done, last_loss)
    seconds = elapsed + time.perf_counter() - t0
    return {"path": path, "step": done, "loss": last_loss, "ips": ips, "seconds": seconds,
            "stopped": stopped, "epochs": round(done / max(steps_per_epoch, 1), 4),
            "digests": dist.gather(d, weight_digest(encoder.clip.state_dict()))}
