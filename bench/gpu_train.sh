#!/usr/bin/env bash
# The GPU checks of the training stage, as one prepared script for the device machine:
#   1. images/s of our training step (SSM targets, MSE + BCE) against open_clip's ClipLoss step
#      on RN50 at 448 px with bf16 autocast (bench/train_step.py, same model, batch, GPU);
#   2. a 2-process `torchrun ... -m pipeline.train` on the GPU (nccl when every rank has a GPU
#      of its own, else the ranks share it over gloo), checking that both ranks end with the same
#      weights, and its images/s.
# The store is synthetic (tests/factories.make_training_store: learnable squares at 448 px), and
# --loss hard needs no sentence encoder, so nothing but the carried wheels is needed there.
#
# Here:   echo /.whl/ >> .git/info/exclude; bash bench/gpu_wheels.sh
# There:  device `run` with carry [".whl"], command "bash bench/gpu_train.sh", timeout_s 540
# On CPU, to check the script itself: DEVICE=cpu MODEL=tiny-rn PX=32 N=48 BATCH=4 bash bench/gpu_train.sh
set -euo pipefail
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}; MODEL=${MODEL:-RN50}; PX=${PX:-448}; N=${N:-1280}; BATCH=${BATCH:-32}
OUT=${OUT:-/tmp/gpu_train_out}; mkdir -p "$OUT"
WORK=$(mktemp -d /tmp/gpu_train.XXXX)
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
AMP=""; [ "$DEVICE" = cuda ] && AMP="--amp"

echo "== 1. our step vs open_clip's ClipLoss step: $MODEL at $PX px, batch 64 $AMP"
$PY bench/train_step.py --model "$MODEL" --image-size "$PX" --batch-size 64 --device "$DEVICE" \
  $AMP --steps 20 2>&1 | grep -v "^WARNING" | tee "$OUT/train_step.txt"

echo "== 2. torchrun, 2 processes, $MODEL at $PX px on $DEVICE"
$PY - "$WORK" "$N" "$PX" <<'PYEOF'
import sys
from pathlib import Path
from sqlmodel import Session
from db.engine import get_engine, init_db
from tests.factories import make_training_store
work, n, px = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
url = f"sqlite:///{work}/store.db"
init_db(url)
with Session(get_engine(url)) as s:
    make_training_store(s, work / "data", n=n, size=px)
    s.commit()
print(f"synthetic store: {n} studies at {px} px")
PYEOF
$PY -m torch.distributed.run --standalone --nproc_per_node 2 -m pipeline.train \
  --db "sqlite:///$WORK/store.db" --data-dir "$WORK/data" --out "$WORK/runs/ddp" \
  --model "$MODEL" --image-size "$PX" --epochs 2 --batch-size "$BATCH" --loss hard \
  --device "$DEVICE" --workers 8 --log-every 5 --save-every 1000 --no-progress \
  2>&1 | grep -v "^WARNING" | tee "$OUT/ddp.txt"
$PY - "$WORK" <<'PYEOF' | tee -a "$OUT/ddp.txt"
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
from sqlmodel import Session, select
from db.engine import get_engine
from db.models import TrainingRun
with Session(get_engine(f"sqlite:///{work}/store.db")) as s:
    run = s.exec(select(TrainingRun)).one()
m = json.loads(run.metrics_json)
rows = [json.loads(x) for x in (work / "runs/ddp/metrics.jsonl").read_text().splitlines()]
same = len(set(m["weight_sha256_per_rank"])) == 1
ips = sorted(r["images_per_s"] for r in rows[1:] or rows)[len(rows[1:] or rows) // 2]  # median
print(f"ddp_world_size={m['world_size']} ddp_steps={m['steps']} ddp_images_per_s={ips:.1f} "
      f"ranks_same_weights={same}")
PYEOF
tail -n1 "$OUT/train_step.txt"
