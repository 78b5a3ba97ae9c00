"""PHI: identifiers planted in standard and private DICOM tags, file names, a manifest and
report text never reach the database file, the pixel files, thumbnails or the logs."""

from __future__ import annotations

import logging
import sqlite3
import struct
from pathlib import Path

from pydicom.uid import generate_uid

from db.engine import get_engine
from pipeline.ingest import cli as ingest
from tests.factories import make_dicom, write_manifest

STUDY_UID = "1.2.826.0.1.3680043.99.4242.1"
UID_NAMED_FILE = "1.2.826.0.1.3680043.99.4242.7.dcm"  # SIIM-style: the file name is a UID
PHI = {
    "PatientName": "Zyxwvut^Qwertyuiop",
    "PatientID": "PHIPID83472",
    "PatientBirthDate": "19410707",
    "AccessionNumber": "ACCX99123",
    "InstitutionName": "Qzxv Memorial Hospital",
    "InstitutionAddress": "17 Plover Lane Springfield",
    "ReferringPhysicianName": "Refdocqz^Kqjx",
    "OperatorsName": "Opnamevb^Nmlk",
    "OtherPatientIDs": "OTHERID55173",
    "StationName": "STATIONQ77",
    "StudyID": "STUDYID4411",
    "StudyTime": "101112",
    "SeriesDate": "20190313",
}
PRIVATE = {0x01: "PRIVSECRET551", 0x02: "Hiddenprivname^Ytr"}
STUDY_DATE = "20190314"


def _needles(extra_uids: list[str]) -> list[str]:
    values = [v for k, v in PHI.items()]
    values += [part for v in PHI.values() for part in v.split("^") if len(part) > 3]
    values += list(PRIVATE.values()) + ["Hiddenprivname", STUDY_UID, STUDY_DATE, "2019-03-14",
                                        "1941-07-07", "2019-03-13", UID_NAMED_FILE[:-4]]
    return values + extra_uids


def _plant(root: Path) -> list[str]:
    """Three DICOMs (one RLE-compressed, one truncated and named by a UID); returns UIDs."""
    uids = []
    for name, rle in (("a.dcm", False), ("b.dcm", True)):
        series, sop = generate_uid(), generate_uid()
        path = make_dicom(root / name, study_uid=STUDY_UID, patient_id=PHI["PatientID"],
                          study_date=STUDY_DATE, rle=rle, private=PRIVATE,
                          attributes={**{k: v for k, v in PHI.items() if k != "PatientID"},
                                      "SeriesInstanceUID": series, "SOPInstanceUID": sop})
        uids += [series, sop]
        assert PHI["PatientName"].encode() in path.read_bytes()
    bad = make_dicom(root / UID_NAMED_FILE, study_uid=STUDY_UID, patient_id=PHI["PatientID"],
                     study_date=STUDY_DATE, attributes=dict(PHI), rows=64, cols=64)
    bad.write_bytes(bad.read_bytes()[:-300])  # header readable, pixels cut short
    return uids


def _db_bytes(db_url: str) -> bytes:
    get_engine(db_url).dispose()
    path = db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return b"".join(Path(p).read_bytes() for p in (path, path + "-wal", path + "-shm")
                    if Path(p).exists())


def _png_chunk_types(data: bytes) -> list[bytes]:
    types, pos = [], 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        types.append(kind)
        pos += 12 + length
    return types


def _assert_clean(blob: bytes, needles: list[str], where: str) -> None:
    low = blob.lower()
    leaked = [n for n in needles if n.lower().encode() in low]
    assert not leaked, f"{where} leaks {leaked}"


def test_no_identifier_reaches_db_files_or_logs(db_url, data_dir, tmp_path, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    folder = tmp_path / "dicoms"
    uids = _plant(folder)
    # The same files through a manifest whose report quotes the patient, and which names them.
    write_manifest(folder / "study.csv", [
        {"study_id": STUDY_UID, "image": "a.dcm", "patient_id": PHI["PatientID"],
         "study_date": STUDY_DATE,
         "report": f"FINDINGS: Zyxwvut QWERTYUIOP (PHIPID83472) at Qzxv Memorial Hospital, "
                   f"accession ACCX99123. Lungs clear.\nIMPRESSION: Normal. {UID_NAMED_FILE}"},
        {"study_id": STUDY_UID, "image": UID_NAMED_FILE, "patient_id": PHI["PatientID"],
         "study_date": STUDY_DATE, "report": ""},
    ])
    common = ["--db", db_url, "--data-dir", str(data_dir), "--no-progress"]
    assert ingest.main([*common, "--workers", "2", "folder", str(folder)]) == 3
    assert ingest.main([*common, "--workers", "0", "--dataset", "m", "folder", str(folder),
                        "--manifest", str(folder / "study.csv")]) == 3
    out, err = capsys.readouterr()
    logs = caplog.text + out + err
    assert "truncated pixel data" in logs  # the bad file was reported, under a pseudonym
    needles = _needles(uids)
    _assert_clean(logs.encode(), needles, "logs")
    db = _db_bytes(db_url)
    assert b"Lungs clear." in db and b"truncated pixel data" in db  # the search can hit
    _assert_clean(db, needles, "database")
    files = [p for p in data_dir.rglob("*") if p.is_file()]
    assert len(files) >= 6  # 2 images x (pixels, display, thumbnail), twice: 2 datasets
    for path in files:
        data = path.read_bytes()
        assert _png_chunk_types(data) == [b"IHDR", b"IDAT", b"IEND"], path.name
        _assert_clean(data, needles, path.name)
        _assert_clean(path.name.encode(), needles, "file name")


def test_report_added_later_is_scrubbed_with_the_stored_dicoms_identifiers(db_url, data_dir,
                                                                          tmp_path):
    folder = tmp_path / "late"
    make_dicom(folder / "a.dcm", attributes={"PatientName": "Latecomer^Quillon"})
    rows = [{"study_id": "S1", "image": "a.dcm", "patient_id": "P1", "report": ""}]
    common = ["--db", db_url, "--data-dir", str(data_dir), "--workers", "0", "--no-progress",
              "folder", str(folder)]
    write_manifest(folder / "manifest.csv", rows)
    assert ingest.main(common) == 3  # image stored, report missing (an IngestError)
    rows[0]["report"] = "FINDINGS: Mr Quillon LATECOMER has clear lungs."
    write_manifest(folder / "manifest.csv", rows)
    assert ingest.main(common) == 0  # the image is not decoded again: its header still counts
    db = _db_bytes(db_url)
    assert b"has clear lungs" in db
    _assert_clean(db, ["Latecomer", "Quillon"], "database")
