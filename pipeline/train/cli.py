"""Train the open_clip dual encoder on the store's curated labels (MedFILIP's SSM loss).

    python -m pipeline.train --db sqlite:///data/medfilip.db --out runs/demo-rn50
    python -m pipeline.train --db sqlite:///data/medfilip.db --out runs/tiny --model tiny-rn \\
        --image-size 64 --epochs 3 --batch-size 32 --include-proposed --negatives use
    python -m pipeline.train --db sqlite:///data/medfilip.db --out runs/tiny --resume latest
    torchrun --nproc_per_node 2 -m pipeline.train --db sqlite:///data/medfilip.db --out runs/ddp

Trains on the "train" split only (splits come from the store, by patient). Labels: accepted,
edited and added findings; ``--include-proposed`` adds the extractor's unreviewed ones; rejected
findings never train. Settings come from the defaults of ``pipeline/train/config.py``
(TrainConfig, one comment per field), then ``--config FILE`` (JSON or YAML), then the flags; on
``--resume`` the checkpoint's config is the base and only run-time fields may change.

Writes runs/NAME/{config.json, run.json, labels.json, metrics.jsonl, train.log, checkpoints/}
and a TrainingRun row named NAME; pixels are cached in DATA_DIR/cache/ for every later run.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from model import ModelError
from pipeline.settings import get_settings
from pipeline.ssm import LabelError
from pipeline.ssm.cli import add_label_flags
from pipeline.ssm.embed import quiet_libraries
from pipeline.train import config as config_mod
from pipeline.train.checkpoint import latest_checkpoint, read_checkpoint
from pipeline.train.config import ConfigError, TrainConfig
from pipeline.train.dist import TrainError
from pipeline.train.rundir import holds_run

# flag dest -> TrainConfig key, where they differ
RENAMED = {"holdout_category": "holdout"}
NOT_CONFIG = {"db", "out", "data_dir", "config", "resume", "no_progress", "no_amp"}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", help="SQLAlchemy URL of the store (default: DATABASE_URL)")
    p.add_argument("--out", required=True, help="run directory, e.g. runs/NAME (NAME names the "
                   "TrainingRun)")
    p.add_argument("--data-dir", help="pixel files and data/cache (default: MEDFILIP_DATA_DIR)")
    p.add_argument("--config", help="JSON or YAML file of TrainConfig keys")
    p.add_argument("--resume", metavar="latest|PATH", help="continue exactly from the run's "
                   "newest checkpoint (latest) or from a checkpoint file")
    m = p.add_argument_group("model")
    m.add_argument("--model", help="open_clip architecture (default RN50; e.g. ViT-B-32, "
                   "tiny-rn, small-rn, small-rn-minilm)")
    m.add_argument("--pretrained", metavar="TAG|PATH", help="open_clip pretrained tag or a local "
                   "checkpoint file (one of our runs' step-N.pt works too)")
    m.add_argument("--hf-text", help="Hugging Face text tower (name or folder; 'minilm' = bundled "
                   "MiniLM) replacing the architecture's")
    m.add_argument("--lock-text", action="store_true", default=None, help="freeze the HF text "
                   "transformer and train its projection only (features computed once)")
    m.add_argument("--image-size", type=int, help="input side in pixels (default: the model's)")
    m.add_argument("--init-logit-scale", type=float, help="starting logit scale (default 1 for "
                   "ssm/hard, 1/0.07 for infonce)")
    m.add_argument("--init-logit-bias", type=float, help="add a learnable logit bias starting here")
    lab = p.add_argument_group("labels and loss")
    lab.add_argument("--loss", choices=("ssm", "hard", "infonce"), help="ssm: MSE+BCE vs soft SSM "
                     "targets (default); hard: vs multi-hot; infonce: CLIP's loss")
    lab.add_argument("--mse-weight", type=float, help="weight of the MSE term (default 1)")
    lab.add_argument("--bce-weight", type=float, help="weight of the BCE term (default 1)")
    lab.add_argument("--sentence-encoder", help="SSM label encoder (default: bundled MiniLM)")
    lab.add_argument("--texts-per-image", type=int, help="label texts drawn per image per step "
                     "(default 1)")
    lab.add_argument("--all-texts", action="store_true", default=None, help="every label text "
                     "is a column of every batch (cheap with --lock-text)")
    add_label_flags(lab)
    o = p.add_argument_group("optimisation")
    o.add_argument("--epochs", type=int, help="passes over the training studies (default 10)")
    o.add_argument("--batch-size", type=int, help="images per process per micro-batch (default 32)")
    o.add_argument("--accum", type=int, help="micro-batches per optimizer step (default 1)")
    o.add_argument("--optimizer", choices=("adamw", "sgd"), help="adamw + warmup-cosine (default) "
                   "or sgd + CosineAnnealingWarmRestarts (MedFILIP)")
    o.add_argument("--lr", type=float, help="peak learning rate (default 5e-4)")
    o.add_argument("--seed", type=int, help="seed of init, order and text draws (default 0)")
    r = p.add_argument_group("run")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto: cuda if any")
    r.add_argument("--no-amp", action="store_true", help="no bf16 autocast on CUDA")
    r.add_argument("--max-minutes", type=float, help="stop (checkpointed, finished) after this "
                   "many training minutes")
    r.add_argument("--save-every", type=int, help="optimizer steps between checkpoints (default 200)")
    r.add_argument("--log-every", type=int, help="optimizer steps between metrics lines (default 10)")
    r.add_argument("--workers", type=int, help="processes building the pixel cache (default 2)")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    return p.parse_args(argv)


def flag_values(args: argparse.Namespace) -> dict:
    values = {RENAMED.get(k, k): v for k, v in vars(args).items() if k not in NOT_CONFIG}
    values["progress"] = False if args.no_progress else None
    values["amp"] = False if args.no_amp else None
    return values


def resolve(args: argparse.Namespace) -> tuple[TrainConfig, dict | None]:
    """(config, checkpoint to resume or None), or ConfigError/TrainError."""
    out, ckpt = Path(args.out), None
    path = latest_checkpoint(out) if args.resume == "latest" else args.resume and Path(args.resume)
    if path and not path.is_file():
        raise TrainError(f"--resume {args.resume}: no such checkpoint file")
    if path:
        try:
            ckpt = read_checkpoint(path)
        except ValueError as exc:
            raise TrainError(f"--resume {exc}") from exc
    elif not args.resume and holds_run(out):
        raise TrainError(f"{out} already holds a run: pass --resume latest to continue it, "
                         "or choose another --out")
    base = config_mod.build(ckpt["config"], "checkpoint").to_dict() if ckpt else {}
    if args.config:
        base = config_mod.merge(base, config_mod.read_file(Path(args.config)),
                                f"--config {args.config}")
    cfg = config_mod.build(config_mod.merge(base, flag_values(args), "flags"))
    if ckpt is not None and (changed := config_mod.changed_fields(
            config_mod.build(ckpt["config"], "checkpoint"), cfg)):
        raise ConfigError(f"--resume: the config differs from the checkpoint's "
                          f"({'; '.join(changed)}); start a new --out to change it")
    return cfg, ckpt


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.train.loop import TrainEnv, train

    args = parse_args(argv)
    quiet_libraries()
    settings = get_settings(database_url=args.db, data_dir=args.data_dir)
    env = TrainEnv(Path(args.out), settings.database_url, Path(settings.data_dir))
    rank0 = os.environ.get("RANK", "0") == "0"
    try:
        cfg, ckpt = resolve(args)
        if args.resume == "latest" and ckpt is None and rank0:
            print(f"{args.out}: no checkpoint yet, starting from scratch")
        result = train(cfg, env, ckpt, reuse_name=args.resume == "latest")
    except (ConfigError, TrainError, LabelError, ModelError) as exc:
        if rank0:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    if rank0:
        stop = " (stopped at --max-minutes)" if result.stopped else ""
        print(f"run {env.out.name}: {result.steps} steps ({result.epochs:g} epochs) in "
              f"{result.seconds:.1f} s{stop}, {result.images_per_s:.0f} images/s, final loss "
              f"{result.final_loss:.4f}, {result.skipped_images} images skipped; checkpoint "
              f"{result.checkpoint}; TrainingRun {result.training_run_id}")
    return 0

