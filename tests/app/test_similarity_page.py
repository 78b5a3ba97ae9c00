"""AppTest of the Similarity page on a tiny trained run's index: a study's nearest images, a
free-text query, the 2-D map, the stale banner, and what a map selection opens."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from curation_app.analysis import selected_study
from db.engine import session_scope
from pipeline.index.files import load_run_index
from pipeline.train.inference import embed_texts, load_run
from tests.factories import make_indexed_run, make_study, run_page


@pytest.fixture
def indexed(app_store, db_url, data_dir, tmp_path):
    return make_indexed_run(db_url, data_dir, tmp_path / "runs" / "tiny")


def _values(v) -> np.ndarray:
    """A plotly array: plotly >= 6 sends numbers as base64 typed arrays."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=v["dtype"])
    return np.asarray(v)


def _open_buttons(at, prefix: str) -> list[int]:
    return [int(b.key.rsplit("_", 1)[1]) for b in at.button if b.key.startswith(prefix)]


def test_nearest_images_of_a_study(indexed):
    ix = load_run_index(indexed)
    sid = int(ix.study_ids[5])
    at = run_page("similarity", study=str(sid))
    assert at.number_input(key="similar_study").value == sid
    want = [s for s, _ in ix.neighbours(sid, 10)]
    assert _open_buttons(at, "near_open_") == want
    text = " ".join(m.value for m in at.markdown)
    assert f"**Study {want[0]}** · cos " in text
    assert "Curated findings:" in " ".join(c.value for c in at.caption)
    at.select_slider(key="similar_k").set_value(5).run()
    assert _open_buttons(at, "near_open_") == want[:5]
    at.number_input(key="similar_study").set_value(99_999).run()
    assert any("not in this index" in w.value for w in at.warning)


def test_a_free_text_query_returns_the_best_matching_images(indexed):
    at = run_page("similarity")
    at.text_input(key="similar_text").input("small left pleural effusion").run()
    assert not at.exception
    ix = load_run_index(indexed)
    query = embed_texts(load_run(indexed), ["small left pleural effusion"])[0]
    want = [s for s, _ in ix.search_vector(query, 10)]
    assert _open_buttons(at, "text_open_") == want
    assert np.argsort(-(ix.vectors @ query))[0] == ix.row_of[want[0]]


def test_the_map_and_its_colours(indexed):
    at = run_page("similarity")
    chart = at.get("plotly_chart")[0]
    data = json.loads(chart.proto.spec)["data"]
    ids = sorted(int(v) for trace in data for v in _values(trace["customdata"]).ravel())
    assert ids == sorted(load_run_index(indexed).study_ids.tolist())
    names = {trace["name"] for trace in data}
    assert {"pleural_effusion", "cardiomegaly", "no finding"} <= names
    at.radio(key="similar_colour").set_value("split").run()
    data = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert {trace["name"] for trace in data} == {"train", "test"}
    at.radio(key="similar_colour").set_value("review status").run()
    data = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert {trace["name"] for trace in data} == {"reviewed"}


def test_new_studies_show_a_banner(indexed, db_url, data_dir):
    with session_scope(db_url) as s:
        make_study(s, key="late", data_dir=data_dir)
    at = run_page("similarity")
    assert any("1 studies were ingested after the index was built" in i.value for i in at.info)


def test_a_selected_point_names_its_study():
    event = {"selection": {"points": [{"x": 0.1, "y": 0.2, "customdata": [17]}],
                           "point_indices": [3]}}
    assert selected_study(event) == 17
    assert selected_study({"selection": {"points": []}}) is None
    assert selected_study(None) is None


def test_no_index_yet(app_store):
    at = run_page("similarity")
    assert "python -m pipeline.index --run runs/NAME" in at.info[0].value
