"""Pixel files: the display copy is capped for the browser, the training file is not."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

from pipeline.ingest.pixels import DISPLAY_MAX_PX, encode_png, shrink, write_pixel_files


def test_shrink_caps_the_long_side_by_an_integer_factor():
    assert shrink(np.zeros((2048, 2048), np.uint8)).shape == (1024, 1024)
    assert shrink(np.zeros((1955, 1841), np.uint8)).shape == (978, 921)
    small = np.zeros((800, 600), np.uint8)
    assert shrink(small) is small


def test_training_file_keeps_full_resolution_and_display_is_capped(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 2**15, size=(2100, 64), dtype=np.uint16)
    display = (stored >> 7).astype(np.uint8)
    paths = write_pixel_files(tmp_path, "k", stored, display)
    with PILImage.open(tmp_path / paths.path) as im:
        assert np.array_equal(np.asarray(im), stored)
    with PILImage.open(tmp_path / paths.display_path) as im:
        assert max(im.size) <= DISPLAY_MAX_PX and im.mode == "L"
    with PILImage.open(tmp_path / paths.thumb_path) as im:
        assert max(im.size) == 256


def test_png_encoder_round_trips_and_carries_no_metadata(tmp_path):
    pixels = np.arange(12 * 7, dtype=np.uint16).reshape(12, 7) * 700
    data = encode_png(pixels)
    (tmp_path / "x.png").write_bytes(data)
    with PILImage.open(tmp_path / "x.png") as im:
        assert np.array_equal(np.asarray(im), pixels)
        assert im.info == {} or set(im.info) <= {"dpi"}
    assert b"tEXt" not in data and b"iTXt" not in data and b"zTXt" not in data
