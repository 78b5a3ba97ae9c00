#!/usr/bin/env bash
# Fetch, here, the wheels bench/gpu_train.sh needs on the device machine, whose image (Python
# 3.12, torch, transformers, timm, numpy, pillow, pyyaml, tqdm) lacks open_clip and the store's
# stack. Versions are this venv's. Usage, from the repo root:
#   echo /.whl/ >> .git/info/exclude; bash bench/gpu_wheels.sh
set -euo pipefail
PIP=${PIP:-.venv/bin/pip}
test -x "$PIP" || PIP=/work/main/.venv/bin/pip
mkdir -p .whl
for pkg in open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 sqlmodel==0.0.50 \
           SQLAlchemy==2.1.9 greenlet==3.5.6 alembic==1.20.1 Mako==1.4.3 \
           pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3 \
           python-dotenv==1.2.4 annotated-types==0.8.0 typing-inspection==0.4.5; do
  "$PIP" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "$pkg"
done
du -sh .whl
