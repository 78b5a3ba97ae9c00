"""The Open-i, MIMIC-CXR-JPG and CheXpert adapters on tiny trees fabricated here."""

from __future__ import annotations

import gzip
import io
import tarfile
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import Session, select

from db.engine import get_engine
from db.models import Image, IngestError, Report, Study
from pipeline.ingest.sources import parse_report
from tests.factories import count_ingested as counts
from tests.factories import make_png
from tests.factories import run_ingest as run

OPENI_XML = """<?xml version="1.0" encoding="utf-8"?>
<eCitation><uId id="{uid}"/><MedlineCitation><Article><Abstract>
<AbstractText Label="COMPARISON">{comparison}</AbstractText>
<AbstractText Label="INDICATION">{indication}</AbstractText>
<AbstractText Label="FINDINGS">{findings}</AbstractText>
<AbstractText Label="IMPRESSION">{impression}</AbstractText>
</Abstract></Article></MedlineCitation>
{images}</eCitation>"""


def _xml(uid: str, findings: str = "", impression: str = "", indication: str = "",
         comparison: str = "", images: tuple[str, ...] = ()) -> bytes:
    tags = "".join(f'<parentImage id="{i}"><figureId>F1</figureId></parentImage>' for i in images)
    return OPENI_XML.format(uid=uid, findings=findings, impression=impression,
                            indication=indication, comparison=comparison,
                            images=tags).encode()


def _tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_parse_report_splits_known_sections_and_keeps_the_rest():
    text = ("EXAMINATION: CHEST (PA AND LAT)\nINDICATION: Fever.\nCOMPARISON: None.\n"
            "FINDINGS: No focal consolidation.\n  Heart size normal.\nIMPRESSION: No pneumonia.")
    r = parse_report(text)
    assert r.text == text
    assert (r.indication, r.comparison) == ("Fever.", "None.")
    assert r.findings == "No focal consolidation. Heart size normal."
    assert r.impression == "No pneumonia."
    assert parse_report("Lungs clear.").findings is None


def test_openi_tgz_reports_sections_and_images(db_url, data_dir, tmp_path, capsys):
    tgz = _tgz(tmp_path / "NLMCXR_reports.tgz", {
        "ecgen-radiology/1.xml": _xml("CXR1", findings="Heart normal.", impression="Normal.",
                                      indication="XXXX", images=("CXR1_IM-0001-1001",
                                                                 "CXR1_IM-0001-2001")),
        "ecgen-radiology/2.xml": _xml("CXR2", findings="Small effusion.", comparison="None."),
        "ecgen-radiology/3.xml": _xml("CXR3"),  # no text in any section
        "ecgen-radiology/4.xml": b"<eCitation><uId id='CXR4'/>",  # cut short
    })
    images = tmp_path / "png"
    make_png(images / "CXR1_IM-0001-1001.png")  # the second image of CXR1 is not in the folder
    assert run(db_url, data_dir, "openi", str(tgz), "--images", str(images)) == 3
    out = capsys.readouterr().out
    assert "4 items: 2 ingested, 0 unchanged, 2 failed (1 images, 2 reports stored" in out
    with Session(get_engine(db_url)) as s:
        reports = {r.findings: r for r in s.exec(select(Report)).all()}
        assert reports["Heart normal."].text == (
            "INDICATION: XXXX\nFINDINGS: Heart normal.\nIMPRESSION: Normal.")
        assert reports["Small effusion."].comparison == "None."
        assert {st.dataset for st in s.exec(select(Study)).all()} == {"openi"}
        messages = sorted(e.message for e in s.exec(select(IngestError)).all())
    assert messages[0].startswith("report without text")
    assert messages[1].startswith("unreadable XML")
    assert run(db_url, data_dir, "openi", str(tgz), "--images", str(images)) == 3
    assert "0 ingested, 2 unchanged, 2 failed" in capsys.readouterr().out


def _gz_csv(path: Path, text: str) -> None:
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(text)


@pytest.fixture
def mimic_root(tmp_path: Path) -> Path:
    root = tmp_path / "mimic-cxr-jpg"
    study = root / "files/p10/p10000032/s50414267"
    make_png(study / "02aa804e.jpg", seed=1)
    make_png(study / "174413ec.jpg", seed=2)
    make_png(root / "files/p11/p11000011/s51111111/3d2ad8f0.jpg", seed=3)
    (root / "files/p10/p10000032/s50414267.txt").write_text(
        "FINAL REPORT\n EXAMINATION: CHEST\n FINDINGS: No effusion.\n IMPRESSION: Normal.\n")
    _gz_csv(root / "mimic-cxr-2.0.0-metadata.csv.gz",
            "dicom_id,subject_id,study_id,ViewPosition,StudyDate\n"
            "02aa804e,10000032,50414267,PA,21800506\n"
            "174413ec,10000032,50414267,LATERAL,21800506\n"
            "3d2ad8f0,11000011,51111111,AP,21900101\n"
            "ffff0000,11000011,,AP,21900101\n")
    _gz_csv(root / "mimic-cxr-2.0.0-split.csv.gz",
            "dicom_id,study_id,subject_id,split\n02aa804e,50414267,10000032,train\n"
            "174413ec,50414267,10000032,train\n3d2ad8f0,51111111,11000011,validate\n")
    return root


def test_mimic_cxr_jpg_layout(db_url, data_dir, mimic_root):
    assert run(db_url, data_dir, "mimic-cxr-jpg", str(mimic_root)) == 3
    assert counts(db_url) == {"Study": 2, "Image": 3, "Report": 1, "IngestError": 1}
    with Session(get_engine(db_url)) as s:
        assert sorted(st.split for st in s.exec(select(Study)).all()) == ["train", "val"]
        assert {i.view for i in s.exec(select(Image)).all()} == {"PA", "LATERAL", "AP"}
        report = s.exec(select(Report)).one()
        assert report.findings == "No effusion." and report.impression == "Normal."
        error = s.exec(select(IngestError)).one()
        assert "11000011" not in error.item + error.message  # the subject id is pseudonymised
        shifted = sorted(st.study_date for st in s.exec(select(Study)).all())
    for real, moved in zip([date(2180, 5, 6), date(2190, 1, 1)], shifted, strict=True):
        assert 1 <= (real - moved).days <= 3650  # shifted back, per patient


@pytest.fixture
def chexpert_root(tmp_path: Path) -> Path:
    root = tmp_path / "CheXpert-v1.0-small"
    make_png(root / "train/patient00001/study1/view1_frontal.jpg", seed=1)
    make_png(root / "train/patient00001/study1/view2_lateral.jpg", seed=2)
    make_png(root / "valid/patient64541/study1/view1_frontal.jpg", seed=3)
    header = "Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding\n"
    (root / "train.csv").write_text(
        header + "CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg,F,68,Frontal,AP,1\n"
        "CheXpert-v1.0-small/train/patient00001/study1/view2_lateral.jpg,F,68,Lateral,,1\n"
        "CheXpert-v1.0-small/train/patient00002/study1/view1_frontal.jpg,M,40,Frontal,PA,1\n")
    (root / "valid.csv").write_text(
        header + "CheXpert-v1.0-small/valid/patient64541/study1/view1_frontal.jpg,M,73,Frontal,PA,\n"
        "nonsense,M,73,Frontal,PA,\n")
    return root


def test_chexpert_layout(db_url, data_dir, chexpert_root):
    assert run(db_url, data_dir, "chexpert", str(chexpert_root)) == 3
    found = counts(db_url)
    # patient00002's file is absent: an error, and no empty study for it.
    assert found == {"Study": 2, "Image": 3, "Report": 0, "IngestError": 2}
    with Session(get_engine(db_url)) as s:
        assert sorted(st.split for st in s.exec(select(Study)).all()) == ["train", "val"]
        assert sorted(i.view for i in s.exec(select(Image)).all()) == ["AP", "LATERAL", "PA"]
        messages = sorted(e.message for e in s.exec(select(IngestError)).all())
    assert messages == ["Path is not <split>/patientN/studyN/<view>.jpg", "image file not found"]
