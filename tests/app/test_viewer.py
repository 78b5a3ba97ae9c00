"""The image viewer: the DICOM window as default on the high-bit file, presets, invert, the
view switch, and the window/level arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage
from streamlit.testing.v1 import AppTest

from curation_app import state, viewer
from db.engine import session_scope
from db.models import Image
from tests.factories import PAGES, assign, make_account, make_reviewable_report


def _png16(path, rows=64, cols=48):
    ramp = (np.linspace(0, 4095, rows * cols).reshape(rows, cols)).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(ramp).save(path)
    return path


@pytest.fixture
def env(app_store, data_dir):
    with session_scope(app_store) as s:
        report, _ = make_reviewable_report(s)
        for i, view in enumerate(("PA", "LATERAL")):
            rel = f"images/hb{i}.png"
            _png16(data_dir / rel)
            s.add(Image(study_id=report.study_id, image_key=f"k{i}" * 8, path=rel, view=view,
                        width=48, height=64, bits_stored=12, window_center=1000.0,
                        window_width=800.0, source_format="dicom", pixel_sha256="0" * 64))
        a = make_account(s, name="Dr A")
        assign(s, report.id, a)
    return report, a


def test_dicom_window_default_presets_invert_and_view_switch(env):
    report, a = env
    at = AppTest.from_file(str(PAGES / "review.py"), default_timeout=30)
    at.session_state[state.KEY_REVIEWER] = a.id
    at.query_params["report"] = str(report.id)
    at.run()
    assert not at.exception, at.exception
    [switch] = [b for b in at.get("button_group") if b.proto.label == "View"]
    assert [o.content for o in switch.proto.options] == ["PA · 48×64", "LATERAL · 48×64"]
    prefix = f"img_{report.id}_"
    level, window = at.slider[0], at.slider[1]
    assert (level.value, window.value) == (1000.0, 800.0)  # the stored DICOM window
    assert "12-bit dicom" in " ".join(c.value for c in at.caption)
    bone = [b for b in at.button if b.key and b.key.startswith(prefix) and
            b.key.endswith("_bone")][0]
    bone.click().run()
    assert at.slider[0].value > 2500  # the bright end of the 0..4095 ramp
    at.toggle[0].set_value(True).run()
    assert "inverted" in " ".join(c.value for c in at.caption)


def test_render_is_the_dicom_linear_window(tmp_path):
    path = str(_png16(tmp_path / "r.png"))
    out = viewer.render(path, 2048.0, 1024.0, False)
    pixels = np.asarray(PILImage.open(path), dtype=np.float32)
    assert out.dtype == np.uint8 and out.shape == pixels.shape
    assert out[pixels <= 1536].max() == 0 and out[pixels >= 2560].min() == 255
    inverted = viewer.render(path, 2048.0, 1024.0, True).astype(int)
    assert np.abs(inverted - (255 - out.astype(int))).max() <= 1  # rounding only
