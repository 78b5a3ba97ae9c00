"""The run directory (TRAIN_API.md): config.json, run.json, labels.json, metrics.jsonl,
train.log, checkpoints/. Only rank 0 writes here."""

from __future__ import annotations

import json
import time
from pathlib import Path

CONFIG, RUN, LABELS, METRICS, LOG = ("config.json", "run.json", "labels.json", "metrics.jsonl",
                                     "train.log")


def holds_run(run_dir: Path) -> bool:
    return (Path(run_dir) / CONFIG).exists()


def write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


class RunDir:
    """Writers of one run's files; every method is a no-op when ``enabled`` is False."""

    def __init__(self, path: Path, enabled: bool):
        self.path, self.enabled = Path(path), enabled
        if enabled:
            self.path.mkdir(parents=True, exist_ok=True)

    def write(self, name: str, data: dict) -> None:
        if self.enabled:
            write_json(self.path / name, data)

    def log(self, message: str) -> None:
        """One timestamped line in train.log."""
        if self.enabled:
            with (self.path / LOG).open("a", encoding="utf-8") as fh:
                fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")

    def metrics(self, row: dict) -> None:
        if self.enabled:
            with (self.path / METRICS).open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")

    def truncate_metrics(self, step: int) -> None:
        """Drop the lines a killed run logged past the checkpoint it resumes from."""
        path = self.path / METRICS
        if self.enabled and path.exists():
            keep = [ln for ln in path.read_text().splitlines() if ln.strip()
                    and json.loads(ln)["step"] <= step]
            path.write_text("".join(ln + "\n" for ln in keep))
