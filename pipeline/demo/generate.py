"""The demo corpus generator: plans studies (patients, splits, case mix), renders each phantom
and its report, and writes the manifest, truth and DICOM share; usage in ``pipeline.demo.cli``."""

from __future__ import annotations

import csv
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipeline.demo.casemix import RENDERED, TruthFinding, sample_findings, sample_view
from pipeline.demo.files import contact_sheet, write_dicom, write_png
from pipeline.demo.lesions import render
from pipeline.demo.report import write_report

VERSION = "1"  # bump when the same seed may give different files
MANIFEST_COLUMNS = ("study_id", "image", "report", "view", "patient_id", "study_date", "split")


@dataclass(frozen=True)
class CorpusConfig:
    n: int  # number of studies (one frontal image each)
    seed: int  # everything derives from it; same seed -> byte-identical output
    size: int = 256  # image side in pixels
    holdout: tuple[str, ...] = ()  # categories kept out of train and val entirely
    dicom_share: float = 0.15  # share of studies whose manifest image is a DICOM file
    uniform_mix: bool = False  # every category equally likely (balanced tests) vs clinical mix
    normal_share: float = 0.3  # share of studies with no finding


@dataclass(frozen=True)
class CorpusSummary:
    out: Path
    n_studies: int
    n_patients: int
    n_dicom: int
    splits: dict[str, int]  # studies per split
    categories: dict[str, int]  # studies showing each rendered category
    seconds: float


@dataclass(frozen=True)
class StudyPlan:
    index: int
    study_id: str
    patient: int
    patient_id: str
    split: str
    view: str
    study_date: date
    findings: tuple[TruthFinding, ...]
    dicom: bool


def plan_corpus(cfg: CorpusConfig) -> list[StudyPlan]:
    """Cheap, sequential decisions: patients, findings, splits, dates, file formats."""
    prng = np.random.default_rng([cfg.seed, 0])
    patients: list[int] = []
    n_patients = 0
    for _ in range(cfg.n):
        if patients and prng.random() < 0.25:  # a follow-up study of a recent patient
            patients.append(patients[-1 - int(prng.integers(min(20, len(patients))))])
        else:
            patients.append(n_patients)
            n_patients += 1
    cases = []
    for i in range(cfg.n):
        rng = np.random.default_rng([cfg.seed, i, 1])
        findings = sample_findings(rng, cfg.uniform_mix, cfg.normal_share)
        cases.append((findings, sample_view(rng, findings)))
    held = {p for p, (fs, _) in zip(patients, cases, strict=True)
            if any(f.category in cfg.holdout for f in fs)}
    seen: dict[int, date] = {}
    plans = []
    for i, (p, (findings, view)) in enumerate(zip(patients, cases, strict=True)):
        rng = np.random.default_rng([cfg.seed, 1, p])
        u = rng.random()
        split = "test" if p in held else ("train" if u < 0.7 else "val" if u < 0.85 else "test")
        start = date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 8 * 365)))
        when = seen.get(p, start - timedelta(days=1)) + timedelta(days=1 + i % 97)
        seen[p] = when
        dicom = bool(np.random.default_rng([cfg.seed, i, 4]).random() < cfg.dicom_share)
        plans.append(StudyPlan(i, f"DEMO-{cfg.seed}-S{i:05d}", p, f"DEMO-{cfg.seed}-P{p:05d}",
                               split, view, when, tuple(findings), dicom))
    return plans


def build_study(args: tuple[StudyPlan, CorpusConfig, Path]) -> tuple[dict, dict]:
    """Render, write PNG (+ DICOM) and report for one study; returns (truth, manifest row)."""
    plan, cfg, out = args
    img = render(list(plan.findings), plan.view, cfg.size, np.random.default_rng([cfg.seed, plan.index, 2]))
    banned = frozenset(cfg.holdout) if plan.split != "test" else frozenset()
    text, truth = write_report(list(plan.findings), plan.view,
                               np.random.default_rng([cfg.seed, plan.index, 3]), banned)
    png = f"images/{plan.study_id}.png"
    write_png(out / png, img)
    image = png
    if plan.dicom:
        image = f"dicom/{plan.study_id}.dcm"
        write_dicom(out / image, img, seed=cfg.seed, index=plan.index, patient=plan.patient,
                    study_id=plan.study_id, view=plan.view, study_date=plan.study_date,
                    rng=np.random.default_rng([cfg.seed, plan.index, 5]))
    report = f"reports/{plan.study_id}.txt"
    (out / report).write_text(text, encoding="utf-8")
    line = {"study_id": plan.study_id, "patient_id": plan.patient_id, "split": plan.split,
            "view": plan.view, "image": png, "findings": [f.truth() for f in truth]}
    row = {"study_id": plan.study_id, "image": image, "report": report, "view": plan.view,
           "patient_id": plan.patient_id, "study_date": plan.study_date.isoformat(),
           "split": plan.split}
    return line, row


def generate_corpus(out: Path, n: int, seed: int, size: int = 256, holdout: tuple[str, ...] = (),
                    dicom_share: float = 0.15, *, uniform_mix: bool = False, workers: int = 1,
                    progress: bool = False) -> CorpusSummary:
    """Write a corpus of ``n`` studies under ``out`` (see the module docstring)."""
    unknown = set(holdout) - set(RENDERED)
    if unknown:
        raise ValueError(f"--holdout-category: not a rendered category: {sorted(unknown)}")
    t0 = time.perf_counter()
    cfg = CorpusConfig(n=n, seed=seed, size=size, holdout=tuple(sorted(holdout)),
                       dicom_share=dicom_share, uniform_mix=uniform_mix)
    out = Path(out)
    for sub in ("images", "dicom", "reports"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    plans = plan_corpus(cfg)
    jobs = [(p, cfg, out) for p in plans]
    bar = dict(total=n, disable=not progress, desc="studies", unit="study")
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            results = list(tqdm(pool.map(build_study, jobs, chunksize=8), **bar))
    else:
        results = [build_study(j) for j in tqdm(jobs, **bar)]
    _write_index(out, cfg, results)
    counts = {c: sum(any(f.category == c for f in p.findings) for p in plans) for c in RENDERED}
    splits = {s: sum(p.split == s for p in plans) for s in ("train", "val", "test")}
    return CorpusSummary(out=out, n_studies=n, n_patients=len({p.patient for p in plans}),
                         n_dicom=sum(p.dicom for p in plans), splits=splits, categories=counts,
                         seconds=time.perf_counter() - t0)


def _write_index(out: Path, cfg: CorpusConfig, results: list[tuple[dict, dict]]) -> None:
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(row for _, row in results)
    with open(out / "truth.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line, sort_keys=False) + "\n" for line, _ in results)
    meta = {"generator": "pipeline.demo", "version": VERSION, **asdict(cfg)}
    (out / "corpus.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def read_truth(out: Path) -> list[dict]:
    with open(Path(out) / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def _caption(f: dict) -> str:
    words = [f[k] for k in ("severity", "side", "region") if f.get(k)]
    return ", ".join(words)


def pick_examples(truth: list[dict]) -> list[tuple[dict, str]]:
    """One study per rendered category (fewest other findings, clearest severity) + a normal."""
    def shown(line):
        return [f for f in line["findings"] if f["presence"] != "absent"
                and f["category"] in RENDERED]
    picks = [(next((t for t in truth if not shown(t)), truth[0]), "normal")]
    rank = {"severe": 0, "moderate": 1, None: 2, "mild": 3}
    for cat in RENDERED:
        cands = [t for t in truth if any(f["category"] == cat for f in shown(t))]
        if cands:
            best = min(cands, key=lambda t: (len(shown(t)), rank[next(
                f["severity"] for f in shown(t) if f["category"] == cat)]))
            picks.append((best, cat))
    return picks


def write_contact_sheet(out: Path, path: Path) -> Path:
    from PIL import Image

    tiles = []
    for line, cat in pick_examples(read_truth(out)):
        img = np.asarray(Image.open(out / line["image"]), dtype=np.float32) / 255.0
        main = next((f for f in line["findings"] if f["category"] == cat), None)
        others = sorted({f["category"].replace("_", " ") for f in line["findings"]
                         if f["presence"] != "absent" and f["category"] != cat})
        sub = _caption(main) if main else "no finding"
        if others:
            sub += (" | + " if sub else "+ ") + ", ".join(others)
        tiles.append((img, cat.replace("_", " "), sub[:48]))
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(path, tiles)
    return path
