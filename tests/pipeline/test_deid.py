"""Pseudonyms, date shifts and identifier scrubbing (pipeline.ingest.deid)."""

from __future__ import annotations

from datetime import date

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from pipeline.ingest.deid import (
    MAX_DATE_SHIFT_DAYS,
    Pseudonymizer,
    header_identifiers,
    identifier_strings,
    parse_date,
    safe_ref,
    scrub_text,
)


def test_keys_are_deterministic_salted_and_scoped():
    a, b = Pseudonymizer("salt-a"), Pseudonymizer("salt-b")
    key = a.study_key("openi", "CXR7")
    assert key == Pseudonymizer("salt-a").study_key("openi", "CXR7")
    assert len(key) == 32 and int(key, 16) >= 0
    assert key != b.study_key("openi", "CXR7")  # the salt matters
    assert key != a.study_key("demo", "CXR7")  # so does the dataset
    assert key != a.image_key("openi", "CXR7") != a.patient_key("openi", "CXR7")
    assert "CXR7" not in key


def test_date_shift_is_per_patient_and_keeps_intervals():
    p = Pseudonymizer("s")
    first, second = date(2020, 3, 1), date(2020, 3, 15)
    s1, s2 = p.shift_date(first, "d", "pat-1"), p.shift_date(second, "d", "pat-1")
    assert s1 != first and (s2 - s1) == (second - first)
    offsets = {p.date_offset_days("d", f"pat-{i}") for i in range(50)}
    assert len(offsets) > 40  # patients do not share one offset
    assert all(1 <= o <= MAX_DATE_SHIFT_DAYS for o in offsets)
    assert p.shift_date(None, "d", "pat-1") is None


def test_parse_date_accepts_dicom_and_iso_and_rejects_junk():
    assert parse_date("20190314") == date(2019, 3, 14)
    assert parse_date("2019-03-14") == date(2019, 3, 14)
    assert parse_date("20191340") is None
    assert parse_date("") is None and parse_date(None) is None and parse_date("abc") is None


def test_scrub_text_removes_name_parts_case_insensitively():
    ids = identifier_strings(["Doe^Jane^Q", "Li^Tech", "ANONYMOUS^PATIENT"], names=True)
    ids |= identifier_strings(["PID-4242"])
    text = ("Patient JANE DOE (PID-4242) seen; doe^jane compared. Lines intact. "
            "Series 1.2.840.113619.2.55.3 reviewed; 1.5 cm nodule. TECHNIQUE: PA. "
            "Seen by tech; the patient.")
    out = scrub_text(text, ids)
    for word in ("JANE", "DOE", "PID-4242", "doe^jane"):
        assert word.lower() not in out.lower()
    assert "Lines intact." in out  # "Li" is too short to scrub: ordinary words survive
    assert "TECHNIQUE: PA." in out and "by XXXX;" in out  # whole words; "Tech" is a name
    assert "the patient" in out  # a placeholder name part is not scrubbed on its own
    assert "1.2.840" not in out and "1.5 cm nodule" in out  # UIDs go, measurements stay
    assert out.count("XXXX") >= 5


def test_safe_ref_pseudonymises_uids_and_known_ids():
    p = Pseudonymizer("s")
    ref = "siim/1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm row for PID-4242"
    out = safe_ref(ref, p, ["PID-4242"])
    assert "1.2.276" not in out and "PID-4242" not in out
    assert out.startswith("siim/id-") and out.endswith(".dcm row for " + p.token("pid-4242"))
    assert safe_ref(ref, p, ["PID-4242"]) == out  # deterministic: the same item, the same ref
    assert safe_ref("images/v1.2.png", p) == "images/v1.2.png"  # not UID-like: kept


def test_header_identifiers_reads_names_ids_and_nested_sequences():
    ds = Dataset()
    ds.PatientName = "Roe^Richard"
    ds.PatientID = "MRN-777"
    ds.InstitutionName = "Mercy General"
    ds.Modality = "CR"
    nested = Dataset()
    nested.PerformingPhysicianName = "House^Gregory"
    ds.ProcedureCodeSequence = Sequence([nested])
    ids = header_identifiers(ds)
    assert {"Roe^Richard", "Roe", "Richard", "MRN-777", "Mercy General", "House",
            "Gregory"} <= ids
    assert "CR" not in ids and "Mercy" not in ids  # only person names are split into parts


def test_report_dates_and_phone_numbers_are_scrubbed_but_measurements_kept():
    from pipeline.ingest.deid import scrub_text

    text = ("Compared with 01/02/2019, 2019-01-02 and March 3, 2018 (3rd March 2018). "
            "Call 555-123-4567 or (555) 123-4567. Nodule 1.5 x 2.1 cm; T9-T12 fractures; "
            "5/6 ribs; tip 4-5 cm above the carina; CTR 16.2/24.7.")
    out = scrub_text(text, [])
    for secret in ("01/02/2019", "2019-01-02", "March 3, 2018", "3rd March 2018", "555-123-4567",
                   "(555) 123-4567"):
        assert secret not in out
    for kept in ("1.5 x 2.1 cm", "T9-T12", "5/6 ribs", "4-5 cm", "16.2/24.7"):
        assert kept in out
