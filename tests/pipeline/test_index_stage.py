"""``python -m pipeline.index`` on a tiny trained run: build, query, save/reload, incremental
adds without a rebuild, and the stale check (new checkpoint, changed curated labels)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sqlmodel import Session, select

from db import queries
from db.engine import session_scope
from db.models import EmbeddingIndex, Finding, FindingStatus, Report
from pipeline.index import cli
from pipeline.index.build import IndexConfig, build_run_index
from pipeline.index.files import index_dir, load_run_index, read_manifest
from pipeline.index.status import index_status
from pipeline.train.checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
from tests.factories import make_reviewer, make_study, make_training_store, train_tiny_run


@pytest.fixture
def run(db_url, engine, data_dir, tmp_path):
    """A tiny run trained on a 24-study store (every 5th study in the test split)."""
    with Session(engine) as s:
        make_training_store(s, data_dir, n=24)
        s.commit()
    return train_tiny_run(db_url, data_dir, tmp_path / "runs" / "tiny", "--negatives", "use")


def _index(db_url, run, *extra) -> int:
    return cli.main(["--run", str(run), "--db", db_url, "--no-progress", *extra])


def _add_studies(engine, data_dir, n: int) -> list[int]:
    rng = np.random.default_rng(7)
    with Session(engine) as s:
        ids = [make_study(s, key=f"late{i}", split="val", data_dir=data_dir,
                          pixels=rng.integers(0, 255, (32, 32)).astype(np.uint8)).id
               for i in range(n)]
        s.commit()
    return ids


def test_build_records_the_choice_and_answers_queries(db_url, engine, run, capsys):
    assert _index(db_url, run) == 0
    out = capsys.readouterr().out
    assert "built; 24 studies" in out and "exact inner-product (flat) index of 24" in out
    ix = load_run_index(run)
    assert ix.images.ntotal == 24 and sorted(ix.study_ids.tolist()) == ix.study_ids.tolist()
    assert np.allclose(np.linalg.norm(ix.vectors, axis=1), 1.0, atol=1e-5)
    # a stored study's own vector finds itself first; its neighbours exclude it, best first
    sid = int(ix.study_ids[3])
    assert ix.search_vector(ix.vectors[3], 1)[0][0] == sid
    hits = ix.neighbours(sid, 5)
    assert len(hits) == 5 and sid not in [h for h, _ in hits]
    cosines = [c for _, c in hits]
    assert cosines == sorted(cosines, reverse=True)
    expected = np.sort(ix.vectors[np.arange(24) != 3] @ ix.vectors[3])[::-1][:5]
    assert np.allclose(cosines, expected, atol=1e-5)
    # every distinct label text of the store, negations included (the run used --negatives use)
    assert "no pneumothorax" in ix.labels.texts and "no finding" in ix.labels.texts
    assert ix.labels.vectors.shape == (len(ix.labels.texts), ix.vectors.shape[1])
    assert ix.zero_shot().shape == (24, len(ix.prompts.categories))
    with Session(engine) as s:
        rows = {r.kind: r for r in s.exec(select(EmbeddingIndex))}
    assert set(rows) == {"image", "label"}
    assert json.loads(rows["image"].spec_json)["kind"] == "flat" and rows["image"].count == 24
    assert rows["image"].checkpoint_sha256 == read_manifest(index_dir(run)).checkpoint_sha256


def test_ivf_above_the_exact_limit_and_reload(db_url, data_dir, run):
    cfg = IndexConfig(run_dir=run, db_url=db_url, exact_limit=10, progress=False)
    result = build_run_index(cfg)
    assert result.spec.kind == "ivf" and result.spec.nprobe >= 1
    ix = load_run_index(run)  # nprobe is a search-time setting: the spec brings it back
    assert ix.images.nprobe == result.spec.nprobe
    assert ix.search_vector(ix.vectors[0], 1)[0][0] == int(ix.study_ids[0])


def test_new_studies_are_added_without_a_rebuild(db_url, engine, data_dir, run, capsys):
    assert _index(db_url, run) == 0
    before = load_run_index(run)
    new = _add_studies(engine, data_dir, 3)
    status = index_status(run, db_url)
    assert not status.stale and status.new_studies == 3
    assert "3 new studies to add" in status.describe()
    capsys.readouterr()
    assert _index(db_url, run) == 0
    assert "updated: 3 new studies added; 27 studies" in capsys.readouterr().out
    after = load_run_index(run)
    assert after.manifest.built_at == before.manifest.built_at and after.manifest.updated_at
    assert after.images.ntotal == 27
    # the old vectors are the same bytes: nothing was re-embedded
    assert np.array_equal(after.vectors[:24], before.vectors)
    for sid in new:
        assert after.search_vector(after.vectors[after.row_of[sid]], 1)[0][0] == sid
        assert not np.isnan(after.map_xy[after.row_of[sid]]).any()  # placed on the saved map
    assert np.array_equal(after.map_xy[:24], before.map_xy)
    assert index_status(run, db_url).describe() == "index up to date"


def test_changed_labels_make_it_stale_until_updated(db_url, engine, run, capsys):
    assert _index(db_url, run) == 0
    assert _index(db_url, run, "--check") == 0
    with session_scope(db_url) as s:
        reviewer = make_reviewer(s)
        finding = s.exec(select(Finding).where(Finding.presence == "present")
                         .order_by(Finding.id)).first()
        assert queries.decide_finding(finding.id, "reject", version=finding.version,
                                      reviewer=reviewer, session=s).ok
    status = index_status(run, db_url)
    assert status.stale and "the curated labels changed" in status.reasons[0]
    capsys.readouterr()
    assert _index(db_url, run, "--check") == 1
    assert "stale: the curated labels changed" in capsys.readouterr().out
    assert _index(db_url, run) == 0
    assert "updated: 0 new studies added" in capsys.readouterr().out
    assert index_status(run, db_url).describe() == "index up to date"


def test_a_new_checkpoint_makes_it_stale_and_rebuilds(db_url, run, capsys):
    assert _index(db_url, run) == 0
    first = load_run_index(run)
    ckpt = read_checkpoint(latest_checkpoint(run))
    state = ckpt["state_dict"]
    name = next(k for k, v in state.items() if v.dtype.is_floating_point and v.ndim == 4)
    state[name] = state[name] + 0.05 * torch.randn_like(state[name])  # as training on would
    save_checkpoint(run, ckpt["step"] + 1, {k: v for k, v in ckpt.items() if k != "format"}, 2)
    status = index_status(run, db_url)
    assert status.stale and "the run's checkpoint changed" in status.reasons[0]
    capsys.readouterr()
    assert _index(db_url, run) == 0
    assert "built; 24 studies" in capsys.readouterr().out
    second = load_run_index(run)
    assert second.manifest.checkpoint.endswith(f"step-{ckpt['step'] + 1}.pt")
    assert not np.allclose(second.vectors, first.vectors)
    assert not index_status(run, db_url).stale


def test_an_unreadable_image_is_left_out_and_not_retried(db_url, engine, data_dir, run, capsys):
    with Session(engine) as s:
        late = _add_studies(engine, data_dir, 1)[0]
        image = queries.list_study_images(session=s, study_ids=[late])[late]
    (data_dir / image.path).write_bytes(b"not a png")
    assert _index(db_url, run) == 0
    assert "1 studies left out: their image could not be read" in capsys.readouterr().out
    ix = load_run_index(run)
    assert late not in ix.row_of and ix.manifest.unreadable == [late]
    assert index_status(run, db_url).new_studies == 0


def test_bad_run_dir_is_one_clear_line(db_url, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["--run", str(tmp_path / "empty"), "--db", db_url]) == 1
    assert capsys.readouterr().err.strip() == (
        f"error: --run {tmp_path / 'empty'}: not a training run (no config.json)")


def test_check_without_an_index(db_url, run, capsys):
    assert _index(db_url, run, "--check") == 1
    assert capsys.readouterr().out.strip().endswith("no index yet")


def test_labels_of_reviewed_studies_only(db_url, engine, run):
    """A study whose findings are all still proposed carries no curated label in the index."""
    with Session(engine) as s:
        report = s.exec(select(Report).order_by(Report.id)).first()
        for f in s.exec(select(Finding).where(Finding.report_id == report.id)):
            f.status = FindingStatus.proposed
            s.add(f)
        s.commit()
        study_id = report.study_id
    assert _index(db_url, run) == 0
    ix = load_run_index(run)
    assert study_id in ix.row_of  # its image is indexed
    assert study_id not in ix.labels.pair_study.tolist()  # but it carries no curated label
