"""DICOM decoding on pydicom's own test files, pydicom-data's RG1_UNCR and built datasets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from pipeline.ingest.dicom import decode_dicom, read_header
from pipeline.ingest.pixels import BadImage
from tests.factories import make_dicom


def _file(name: str) -> Path:
    return Path(get_testdata_file(name))


def test_rg1_uncr_real_15bit_monochrome1_chest_cr():
    path = _file("RG1_UNCR.dcm")  # pydicom-data: 1955 x 1841, 15-bit, MONOCHROME1
    raw = pydicom.dcmread(path).pixel_array
    img = decode_dicom(path)
    assert img.stored.shape == img.display.shape == (1955, 1841)
    assert img.stored.dtype == np.uint16 and img.bits_stored == 15
    assert img.photometric == "MONOCHROME1" and img.view == "PA"
    # MONOCHROME1 inverted into MONOCHROME2: stored = (2**15 - 1) - raw, exactly.
    assert np.array_equal(img.stored.astype(np.int64), 32767 - raw.astype(np.int64))
    # The header's window (C 15000, W 30000) in stored coordinates.
    assert img.window_center == 32767 - 15000 and img.window_width == 30000
    sample = slice(None, None, 7)
    corr = np.corrcoef(img.display[sample, sample].ravel(), raw[sample, sample].ravel())[0, 1]
    assert corr < -0.95  # display is the inverse of the raw MONOCHROME1 values


def test_monochrome1_inverts_after_the_window(tmp_path):
    ramp = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (4, 1))
    m2 = decode_dicom(make_dicom(tmp_path / "m2.dcm", pixels=ramp, window=(2048, 4096)))
    m1 = decode_dicom(make_dicom(tmp_path / "m1.dcm", pixels=ramp, window=(2048, 4096),
                                 photometric="MONOCHROME1"))
    assert np.all(np.diff(m2.display[0].astype(int)) >= 0)  # brighter with value
    assert np.all(np.diff(m1.display[0].astype(int)) <= 0)  # darker with value
    assert np.abs(m1.display.astype(int) + m2.display.astype(int) - 255).max() <= 1


def test_linear_window_clips_and_centres(tmp_path):
    pixels = np.array([[0, 900, 1000, 1100, 4000]], dtype=np.uint16)
    img = decode_dicom(make_dicom(tmp_path / "w.dcm", pixels=pixels, window=(1000, 200)))
    assert img.display[0, 0] == 0 and img.display[0, 4] == 255
    assert img.display[0, 1] < img.display[0, 2] < img.display[0, 3]
    assert abs(int(img.display[0, 2]) - 128) <= 1
    assert img.window_center == 1000 and img.window_width == 200


def test_no_window_uses_the_image_range(tmp_path):
    pixels = np.array([[100, 200], [300, 400]], dtype=np.uint16)
    img = decode_dicom(make_dicom(tmp_path / "n.dcm", pixels=pixels, window=None))
    assert img.display.min() == 0 and img.display.max() == 255
    assert img.window_center == 250 and img.window_width == 300


def test_voi_lut_sequence_matches_pydicom():
    path = _file("vlut_04.dcm")
    ds = pydicom.dcmread(path)
    expected = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds).astype(np.float64)
    top = 2 ** int(ds.VOILUTSequence[0].LUTDescriptor[2]) - 1
    img = decode_dicom(path)
    assert np.abs(img.display.astype(float) - np.rint(expected / top * 255)).max() <= 1


@pytest.mark.parametrize("name", ["CT_small.dcm", "mlut_18.dcm"])
def test_modality_lut_rescale_and_lut_sequence(name):
    ds = pydicom.dcmread(_file(name))
    modality = apply_modality_lut(ds.pixel_array, ds).astype(np.float64)
    img = decode_dicom(_file(name))
    # Stored values are the modality output moved to start at 0: differences are preserved.
    assert np.array_equal(np.diff(img.stored.astype(np.float64), axis=1),
                          np.diff(np.rint(modality), axis=1))


@pytest.mark.parametrize("compressed", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                                        "MR_small_jpeg_ls_lossless.dcm"])
def test_lossless_compressed_syntaxes_decode_to_the_uncompressed_pixels(compressed):
    reference = decode_dicom(_file("MR_small.dcm"))
    img = decode_dicom(_file(compressed))
    assert np.array_equal(img.stored, reference.stored)


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "JPGExtended.dcm", "RG1_J2KI.dcm"])
def test_lossy_and_j2k_syntaxes_decode(name):
    img = decode_dicom(_file(name))
    assert img.stored.ndim == 2 and img.display.dtype == np.uint8
    assert img.display.max() > img.display.min()


@pytest.mark.parametrize(("name", "message"), [("SC_rgb.dcm", "colour DICOM"),
                                               ("emri_small.dcm", "multi-frame")])
def test_unsupported_files_fail_with_a_specific_message(name, message):
    with pytest.raises(BadImage, match=message):
        decode_dicom(_file(name))


def test_burned_in_annotation_is_refused(tmp_path):
    path = make_dicom(tmp_path / "b.dcm", attributes={"BurnedInAnnotation": "YES"})
    with pytest.raises(BadImage, match="BurnedInAnnotation"):
        decode_dicom(path)
    assert decode_dicom(make_dicom(tmp_path / "n.dcm", attributes={"BurnedInAnnotation": "NO"}))


def test_broken_inputs_fail_with_specific_messages(tmp_path):
    with pytest.raises(BadImage, match="empty file"):
        decode_dicom(b"")
    with pytest.raises(BadImage, match="not a DICOM file"):
        decode_dicom(b"hello, this is a text file" * 10)
    data = make_dicom(tmp_path / "t.dcm", rows=64, cols=64).read_bytes()
    with pytest.raises(BadImage, match="truncated pixel data"):
        decode_dicom(data[:-1000])
    with pytest.raises(BadImage, match="without pixel data"):
        decode_dicom(data[:200])  # pydicom reads what is there: the pixel module is gone
    with pytest.raises(BadImage, match="corrupt or truncated DICOM header"):
        decode_dicom(data[:141])  # cut inside the File Meta group length value


def test_read_header_gives_grouping_keys_and_identifiers(tmp_path):
    path = make_dicom(tmp_path / "h.dcm", study_uid="1.2.3.4.5", patient_id="MRN-1",
                      study_date="20200102", attributes={"PatientName": "Doe^Jane"})
    header = read_header(path)
    assert header.study_uid == "1.2.3.4.5" and header.patient_id == "MRN-1"
    assert header.study_date.isoformat() == "2020-01-02"
    assert {"MRN-1", "Doe", "Jane"} <= header.identifiers
