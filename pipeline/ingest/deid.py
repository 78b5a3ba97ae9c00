"""De-identification on the way in: pseudonyms, per-patient date shifts, identifier scrubbing.

The approach is an allowlist. DICOM headers are never persisted: ``pipeline.ingest.dicom`` reads the
pixel data and a short list of safe attributes (``SAFE_ATTRIBUTES``), and the only dated
attribute kept, StudyDate, is shifted here. Everything on the DICOM PS3.15 Basic Application
Level Confidentiality Profile list (names, ids, dates, times, UIDs, institutions, private tags)
therefore never reaches the database, a pixel file, a log or an export, whatever its tag.

Why not pydicom's ``deid`` package? deid 0.4.13 runs under pydicom 3, but its default recipe
(``deid/data/deid.dicom``) is one site's list rather than PS3.15 Table E.1-1: run on RG1_UNCR
it keeps InstitutionName ("Philips Medical Systems Hamburg"), StationName,
InstitutionalDepartmentName and DeviceSerialNumber. Fixing that means keeping our own recipe,
i.e. a hand-kept tag list after all. And a recipe cleans a header that is then written out,
which this product never does: an allowlist of what is read cannot miss a tag that a denylist
forgot, private tags included. (highdicom creates DICOM objects; it has no de-identifier.)
Headers are still read for one thing, scrubbing that study's identifying values out of report
text, and ``header_identifiers`` collects those (every PN element plus the ids, institution and
station attributes of Table E.1-1 that a report might quote).

Keys: ``HMAC-SHA256(salt, kind:dataset:id)``, hex, truncated to 128 bits (collision-free in
practice and short enough for file names). Dates move back by 1..3650 days, the same offset for
every study of one patient, so intervals between a patient's studies survive.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from pydicom.multival import MultiValue

KEY_HEX_CHARS = 32  # 128 bits of the HMAC-SHA256 digest
MAX_DATE_SHIFT_DAYS = 3650
MIN_IDENTIFIER_CHARS = 3  # shorter fragments ("Li", "A") would shred ordinary report words
REDACTED = "XXXX"  # Open-i's own placeholder, so scrubbed reports look like the public corpus

# The only DICOM attributes whose values ``pipeline.ingest.dicom`` passes on (besides pixels). None is
# on the PS3.15 Basic Profile list except StudyDate, which is shifted before storing. Decoding
# also reads the pixel module (SamplesPerPixel, BitsAllocated, PixelRepresentation, ...), the
# Modality and VOI LUT modules and BurnedInAnnotation, but only to transform pixels or refuse.
SAFE_ATTRIBUTES = (
    "ViewPosition", "PhotometricInterpretation", "Rows", "Columns", "BitsStored",
    "WindowCenter", "WindowWidth", "StudyDate",
)

# Identifying attributes whose values are scrubbed from that study's report text (PS3.15
# Table E.1-1 entries likely to be typed into a report). Every PN element is added too.
TEXT_IDENTIFIER_KEYWORDS = (
    "PatientID", "OtherPatientIDs", "PatientName", "OtherPatientNames", "PatientBirthName",
    "PatientMotherBirthName", "AccessionNumber", "StudyID", "InstitutionName",
    "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "PatientAddress",
    "PatientTelephoneNumbers", "MedicalRecordLocator", "IssuerOfPatientID", "DeviceSerialNumber",
    "RequestingService", "CurrentPatientLocation", "PatientInstitutionResidence",
)

# Placeholder words of already-anonymised names; never scrubbed on their own.
NAME_FILLERS = frozenset({"patient", "anonymous", "anon", "anonymized", "anonymised", "unknown",
                          "test", "demo", "none", "name"})

# DICOM UIDs (PS3.5 9.1: dotted digit groups) and bare digit runs long enough to be ids.
UID_RE = re.compile(r"(?<![\w.])\d+(?:\.\d+){3,}(?![\w])")
# In a reference (a file name), a run of 7+ digits is shaped like an MRN, an accession number or
# a date (20190314): masked even when no header names it.
LONG_DIGITS_RE = re.compile(r"(?<!\d)\d{7,}(?!\d)")

# Dates and phone numbers in report prose are identifiers too (HIPAA Safe Harbor): numeric dates
# with a year ("01/02/2019", "2019-01-02", "1.2.19"), written dates ("March 3, 2018",
# "3 March 2018"), and US-style phone numbers. Measurements ("1.5 x 2 cm", "T9-T12", "5/6",
# "16.2/24.7") do not match: a whole run of digits and separators must have a date's shape.
# Each pattern runs behind a cheap digit-led pre-check: a leading look-behind or an
# alternation of month names would scan every report at a fraction of the ingest's speed.
_NUMERIC_RUN = re.compile(r"\d[\d/.-]{3,8}\d")
_NUMERIC_DATE = re.compile(r"\d{1,2}([/.-])\d{1,2}\1(?:\d{4}|\d{2})|\d{4}([/.-])\d{1,2}\2\d{1,2}")
_YEAR = re.compile(r"\d{4}")
_MONTHS = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
           r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
WRITTEN_DATE_RE = re.compile(
    rf"\b{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTHS}\.?,?\s+\d{{4}}\b", re.IGNORECASE)
_PHONE_HINT = re.compile(r"\d{3}[-.]\d{4}")
PHONE_RE = re.compile(r"(?<!\w)(?:\(\d{3}\)\s?|\d{3}[-.\s])\d{3}[-.]\d{4}(?!\w)")


def _numeric_date(m: re.Match) -> str:
    text, start, end = m.string, m.start(), m.end()
    glued = (start and (text[start - 1].isalnum() or text[start - 1] in "._")) or (
        end < len(text) and (text[end].isalnum() or text[end] == "_"))
    return m.group(0) if glued or not _NUMERIC_DATE.fullmatch(m.group(0)) else REDACTED


def scrub_dates_and_phones(text: str) -> str:
    """Free text with dates and phone numbers replaced by ``XXXX``."""
    text = _NUMERIC_RUN.sub(_numeric_date, text)
    if _YEAR.search(text):
        text = WRITTEN_DATE_RE.sub(REDACTED, text)
    if _PHONE_HINT.search(text):
        text = PHONE_RE.sub(REDACTED, text)
    return text



@dataclass(frozen=True)
class Pseudonymizer:
    """Salted, deterministic keys and date offsets; the salt comes from settings."""

    salt: str

    @lru_cache(maxsize=1 << 16)  # noqa: B019 - the instance lives as long as the run
    def key(self, kind: str, dataset: str, source_id: str) -> str:
        msg = f"{kind}:{dataset}:{source_id}".encode()
        return hmac.new(self.salt.encode(), msg, hashlib.sha256).hexdigest()[:KEY_HEX_CHARS]

    def study_key(self, dataset: str, study_id: str) -> str:
        return self.key("study", dataset, study_id)

    def image_key(self, dataset: str, image_id: str) -> str:
        return self.key("image", dataset, image_id)

    def patient_key(self, dataset: str, patient_id: str) -> str:
        return self.key("patient", dataset, patient_id)

    def date_offset_days(self, dataset: str, patient_id: str) -> int:
        digest = self.key("date-shift", dataset, patient_id)
        return 1 + int(digest[:8], 16) % MAX_DATE_SHIFT_DAYS

    def shift_date(self, value: date | None, dataset: str, patient_id: str) -> date | None:
        if value is None:
            return None
        return value - timedelta(days=self.date_offset_days(dataset, patient_id))

    def token(self, value: str) -> str:
        """A short stand-in for an identifier inside a reference string (file names, items)."""
        return "id-" + self.key("token", "", value)[:12]


def parse_date(value: str | None) -> date | None:
    """A DICOM DA (YYYYMMDD) or ISO (YYYY-MM-DD) date; None when empty or malformed."""
    text = (value or "").strip().replace("-", "").replace("/", "")[:8]
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def identifier_strings(values: Iterable[object], *, names: bool = False) -> frozenset[str]:
    """Identifier values long enough to scrub; with ``names``, person-name components too
    ("Doe^Jane" -> "Doe^Jane", "Doe", "Jane"), minus placeholder words such as "PATIENT" in
    "ANONYMOUS^PATIENT", which would otherwise blank ordinary report words."""
    out: set[str] = set()
    for value in values:
        text = str(value or "").strip()
        if not text:
            continue
        parts = {text}
        if names:
            parts |= {p for p in re.split(r"[\^=\s,]+", text) if p.lower() not in NAME_FILLERS}
        out.update(p for p in parts if len(p) >= MIN_IDENTIFIER_CHARS)
    return frozenset(out)


def header_identifiers(ds) -> frozenset[str]:
    """Values of identifying attributes in a pydicom Dataset (for scrubbing, never stored)."""
    names: list[object] = []
    others: list[object] = []
    for elem in ds.iterall():
        if elem.VR == "PN" or elem.keyword in TEXT_IDENTIFIER_KEYWORDS:
            value = elem.value
            values = value if isinstance(value, MultiValue | list) else [value]
            (names if elem.VR == "PN" else others).extend(values)
    return identifier_strings(names, names=True) | identifier_strings(others)


def _pattern(identifiers: Iterable[str], whole_words: bool = True) -> re.Pattern[str] | None:
    words = sorted({i for i in identifiers if len(i) >= MIN_IDENTIFIER_CHARS}, key=len,
                   reverse=True)  # longest first, so "Doe^John" wins over "Doe"
    if not words:
        return None
    alternation = "|".join(re.escape(w) for w in words)
    if not whole_words:
        return re.compile(alternation, re.IGNORECASE)
    # In prose, whole words only: "TECH" (an operator) must not blank "TECHNIQUE".
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


def scrub_text(text: str, identifiers: Iterable[str]) -> str:
    """Replace every known identifier of this study, and anything shaped like a DICOM UID, a
    date or a phone number, in free text by ``XXXX``."""
    lowered = text.lower()
    # A regex is compiled only for identifiers that occur: most reports quote none, and one
    # compile per study cost more than the rest of Open-i's ingest.
    pattern = _pattern(i for i in identifiers if i.lower() in lowered)
    text = pattern.sub(REDACTED, text) if pattern else text
    return scrub_dates_and_phones(UID_RE.sub(REDACTED, text))


def safe_ref(ref: str, pseudo: Pseudonymizer, identifiers: Iterable[str] = ()) -> str:
    """A source reference (relative path, row number) fit for logs and IngestError.item:
    UID-like tokens, long digit runs and the study's known identifiers (even inside a path
    segment such as "p10000032") become salted tokens; the rest of the path stays readable."""
    pattern = _pattern(identifiers, whole_words=False)
    if pattern is not None:
        ref = pattern.sub(lambda m: pseudo.token(m.group(0).lower()), ref)
    ref = UID_RE.sub(lambda m: pseudo.token(m.group(0)), ref)
    return LONG_DIGITS_RE.sub(lambda m: pseudo.token(m.group(0)), ref)
