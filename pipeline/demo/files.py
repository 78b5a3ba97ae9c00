"""Files of the demo corpus: PNG, DICOM with a realistic CR/DX header, and the contact sheet.

DICOM identifiers are obviously synthetic ("DEMO^PATIENT^0042", "DEMO GENERAL HOSPITAL") so
that ingest's de-identification has something to remove, and nothing real can leak. UIDs are
derived from (seed, study) so the same seed gives byte-identical files.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

CR_SOP = "1.2.840.10008.5.1.4.1.1.1"  # Computed Radiography Image Storage
DX_SOP = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
FIELD_MM = 360.0  # the phantom's field of view


def write_png(path: Path, img: np.ndarray) -> None:
    """8-bit grayscale PNG; compress_level 1 keeps generation fast (files ~15% larger)."""
    Image.fromarray((img * 255.0 + 0.5).astype(np.uint8), mode="L").save(path, compress_level=1)


def write_dicom(path: Path, img: np.ndarray, *, seed: int, index: int, patient: int,
                study_id: str, view: str, study_date: date, rng: np.random.Generator) -> None:
    """A CR or DX file: 12 bits stored in 16, MONOCHROME1 (inverted) for about a third."""
    uid = lambda *k: generate_uid(entropy_srcs=[str(seed), study_id, *k])  # noqa: E731
    modality = "CR" if rng.random() < 0.5 else "DX"
    mono1 = bool(rng.random() < 0.35)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CR_SOP if modality == "CR" else DX_SOP
    meta.MediaStorageSOPInstanceUID = uid("sop")
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = uid("study"), uid("series")
    ds.Modality, ds.ViewPosition, ds.BodyPartExamined = modality, view, "CHEST"
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = ds.ContentTime = f"{8 + index % 10:02d}{index % 60:02d}00"
    ds.StudyDescription = f"XR CHEST {view} 1 VIEW"
    ds.SeriesDescription = f"CHEST {view}"
    ds.StudyID = str(index)
    ds.AccessionNumber = f"DEMOACC{seed % 1000:03d}{index:06d}"
    ds.PatientName = f"DEMO^PATIENT^{patient:04d}"
    ds.PatientID = f"DEMO-MRN-{seed % 1000:03d}-{patient:05d}"
    birth = date(1935, 1, 1) + timedelta(days=int(rng.integers(0, 60 * 365)))
    ds.PatientBirthDate = birth.strftime("%Y%m%d")
    ds.PatientSex = "M" if rng.random() < 0.5 else "F"
    ds.PatientAge = f"{max(18, (study_date - birth).days // 365):03d}Y"
    ds.InstitutionName = "DEMO GENERAL HOSPITAL (SYNTHETIC)"
    ds.InstitutionAddress = "1 Phantom Way, Nowhere"
    ds.ReferringPhysicianName = f"DEMO^REFERRER^{index % 37:02d}"
    ds.OperatorsName = "DEMO^TECH"
    ds.StationName = "DEMO-XR-01"
    ds.Manufacturer = "MedFILIP Phantom"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientOrientation = ["L", "F"] if view == "PA" else ["R", "F"]
    _pixels(ds, img, mono1)
    block = ds.private_block(0x0011, "MEDFILIP DEMO", create=True)
    block.add_new(0x01, "LO", f"DEMO-ENCOUNTER-{patient:05d}-{index:05d}")
    ds.save_as(path, enforce_file_format=True)


def _pixels(ds: Dataset, img: np.ndarray, mono1: bool) -> None:
    stored = np.round(img * 4095.0).astype(np.uint16)
    if mono1:
        stored = (4095 - stored).astype(np.uint16)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME1" if mono1 else "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    spacing = FIELD_MM / stored.shape[0]
    ds.PixelSpacing = ds.ImagerPixelSpacing = [f"{spacing:.4f}", f"{spacing:.4f}"]
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = "1", "0", "US"
    ds.WindowCenter, ds.WindowWidth = "2048", "4096"
    ds.PixelData = stored.tobytes()


def _font(px: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=px)
    except (TypeError, OSError):  # Pillow without FreeType
        return ImageFont.load_default()


def contact_sheet(path: Path, tiles: list[tuple[np.ndarray, str, str]], cols: int = 6,
                  tile: int = 256) -> None:
    """Grid of (image, title, subtitle) tiles with captions under each image."""
    cap = 40
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tile, rows * (tile + cap)), (18, 18, 18))
    draw = ImageDraw.Draw(sheet)
    big, small = _font(17), _font(13)
    for i, (img, title, sub) in enumerate(tiles):
        x, y = (i % cols) * tile, (i // cols) * (tile + cap)
        im = Image.fromarray((img * 255 + 0.5).astype(np.uint8), "L").resize((tile, tile))
        sheet.paste(im.convert("RGB"), (x, y))
        draw.text((x + 6, y + tile + 3), title, fill=(255, 214, 102), font=big)
        draw.text((x + 6, y + tile + 22), sub, fill=(200, 200, 200), font=small)
    sheet.quantize(colors=128, dither=Image.Dither.NONE).save(path, optimize=True)  # ~40% smaller
