"""Hypothesis fuzzing: the manifest reader and truncated / bit-flipped DICOM bytes never crash
ingest, and every failure is recorded."""

from __future__ import annotations

import csv
import io
import sqlite3
import tempfile
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import cli as ingest
from pipeline.ingest.dicom import decode_dicom
from pipeline.ingest.pixels import BadImage
from pipeline.ingest.sources import ItemError, StudyItem, iter_manifest
from tests.factories import make_dicom

FUZZ = settings(deadline=None, max_examples=150,
                suppress_health_check=[HealthCheck.too_slow])
COLUMNS = ["study_id", "image", "report", "view", "patient_id", "study_date", "split"]

cell = st.one_of(st.text(max_size=12), st.sampled_from(["train", "val", "2020-01-02",
                                                         "20200102", "a.png", "r.txt", " "]))


def _read(folder: Path, text: str | bytes) -> list:
    manifest = folder / "manifest.csv"
    if isinstance(text, bytes):
        manifest.write_bytes(text)
    else:
        manifest.write_text(text, encoding="utf-8", newline="")
    return list(iter_manifest(folder, manifest, "fuzz"))


@FUZZ
@given(rows=st.lists(st.lists(cell.filter(lambda s: "\x00" not in s), min_size=0, max_size=9),
                     max_size=12))
def test_every_manifest_row_becomes_an_image_or_an_error(rows):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    with tempfile.TemporaryDirectory() as tmp:
        out = _read(Path(tmp), buf.getvalue())
    images = sum(len(o.images) for o in out if isinstance(o, StudyItem))
    errors = [o for o in out if isinstance(o, ItemError)]
    assert all(isinstance(o, StudyItem | ItemError) for o in out)
    assert all(e.message and e.ref.startswith("manifest.csv line") for e in errors)
    assert images + len(errors) == len([r for r in rows if r])  # blank lines are no rows


@FUZZ
@given(data=st.binary(max_size=400), header=st.booleans())
def test_arbitrary_manifest_bytes_never_crash(data, header):
    prefix = (",".join(COLUMNS) + "\n").encode() if header else b""
    with tempfile.TemporaryDirectory() as tmp:
        out = _read(Path(tmp), prefix + data)
    assert all(isinstance(o, StudyItem | ItemError) for o in out)


@lru_cache(maxsize=1)
def _dicom_bytes() -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        plain = make_dicom(Path(tmp) / "a.dcm", rows=16, cols=16, window=(100, 200),
                           attributes={"PatientName": "Fuzz^Case"}).read_bytes()
        rle = make_dicom(Path(tmp) / "b.dcm", rows=16, cols=16, rle=True).read_bytes()
    return plain, rle


@st.composite
def damaged_dicom(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_dicom_bytes())))
    if draw(st.booleans()):
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


@FUZZ
@given(data=damaged_dicom())
def test_damaged_dicom_decodes_or_fails_with_badimage(data):
    try:
        img = decode_dicom(data)
    except BadImage as exc:
        assert str(exc)
        return
    assert img.stored.shape == img.display.shape and img.display.dtype.name == "uint8"


@settings(deadline=None, max_examples=8, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.lists(damaged_dicom(), min_size=1, max_size=6))
def test_every_damaged_file_is_stored_or_recorded(files):
    with tempfile.TemporaryDirectory() as tmp:
        folder, db = Path(tmp) / "in", Path(tmp) / "s.db"
        folder.mkdir()
        for i, data in enumerate(files):
            (folder / f"{i}.dcm").write_bytes(data)
        code = ingest.main(["--db", f"sqlite:///{db}", "--data-dir", str(Path(tmp) / "d"),
                            "--workers", "0", "--no-progress", "folder", str(folder)])
        with sqlite3.connect(db) as con:
            stored = con.execute("SELECT count(*) FROM image").fetchone()[0]
            recorded = con.execute("SELECT count(*) FROM ingesterror").fetchone()[0]
    assert stored + recorded == len(files)
    assert code == (1 if not stored else 3 if recorded else 0)
