"""A DICOM whose pixels do not decode still has its header read: its identifiers scrub the
report, and every message about the file hides them while still saying where the file is."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlmodel import Session, select

from db.engine import get_engine
from db.models import IngestError, Report
from pipeline.ingest import cli as ingest
from tests.factories import make_dicom, write_manifest

NAME = "Quorvath^Zelinda"
MRN = "MRN55667"
NEEDLES = ("Quorvath", "Zelinda", MRN)


def _truncated_dicom(path: Path, **kw) -> Path:
    dcm = make_dicom(path, patient_id=MRN, rows=64, cols=64,
                     attributes={"PatientName": NAME}, **kw)
    dcm.write_bytes(dcm.read_bytes()[:-300])  # header readable, pixels cut short
    return dcm


def _run(db_url: str, data_dir: Path, *source: str) -> int:
    return ingest.main(["--db", db_url, "--data-dir", str(data_dir), "--workers", "0",
                        "--no-progress", *source])


def _stored(db_url: str) -> tuple[list[str], list[IngestError]]:
    with Session(get_engine(db_url)) as s:
        return ([r.text for r in s.exec(select(Report))], list(s.exec(select(IngestError))))


def _assert_clean(text: str, where: str) -> None:
    leaked = [n for n in NEEDLES if n.lower() in text.lower()]
    assert not leaked, f"{where} leaks {leaked}: {text!r}"


def test_undecodable_dicom_header_still_scrubs_report_and_messages(db_url, data_dir, tmp_path,
                                                                  caplog, capsys):
    caplog.set_level(logging.WARNING)
    root = tmp_path / "corpus"
    name = "scans/Quorvath_Zelinda_MRN55667_20190314.dcm"
    _truncated_dicom(root / name)
    # The manifest's patient_id is not the MRN: only the DICOM header knows the name and MRN.
    write_manifest(root / "manifest.csv", [
        {"study_id": "S1", "patient_id": "P1", "image": name,
         "report": "FINDINGS: Patient: Zelinda Quorvath, MRN55667. Lungs clear.\n"
                   "IMPRESSION: Normal."}])
    _run(db_url, data_dir, "folder", str(root))
    reports, errors = _stored(db_url)
    assert len(reports) == 1 and "Lungs clear." in reports[0]
    _assert_clean(reports[0], "stored report")
    (error,) = errors
    assert "truncated pixel data" in error.message
    _assert_clean(error.item + error.message, "IngestError")
    assert "20190314" not in error.item  # a date-shaped digit run, though no header names it
    # Findable: the manifest line and the folder-relative path, identifiers masked.
    assert error.item.startswith("manifest.csv line 2: scans/") and error.item.endswith(".dcm")
    out, err = capsys.readouterr()
    logs = caplog.text + out + err
    assert "truncated pixel data" in logs and "line 2" in logs
    _assert_clean(logs, "logs")


def test_folder_mode_names_an_identifier_named_file_so_it_can_be_found(db_url, data_dir,
                                                                      tmp_path, capsys):
    root = tmp_path / "images"
    make_dicom(root / "batch7" / "a.dcm")
    _truncated_dicom(root / "batch7" / "Zelinda_Quorvath.dcm")
    _run(db_url, data_dir, "folder", str(root))
    _, errors = _stored(db_url)
    (error,) = errors
    _assert_clean(error.item + error.message, "IngestError")
    # the folder, the masked name, and its place in the folder's sorted listing
    assert error.item.startswith("batch7/") and ".dcm" in error.item
    assert "file 1 of 2" in error.item, error.item  # "Z" sorts before "a"
    _assert_clean(capsys.readouterr().err, "stderr")
