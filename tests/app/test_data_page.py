"""AppTest of the Data page: counts, extraction coverage, findings chart, recorded errors."""

from __future__ import annotations

from sqlmodel import select

from db import queries
from db.engine import session_scope
from db.models import ExtractionError, IngestError, Report
from tests.factories import make_study, run_page


def test_empty_store_says_so(app_store):
    at = run_page("data")
    assert [m.value for m in at.metric][:4] == ["0", "0", "0", "0"]
    assert any("No extraction has run" in c.value for c in at.caption)


def test_counts_coverage_and_errors(app_store):
    with session_scope(app_store) as s:
        for i in range(3):
            make_study(s, key=f"s{i}")
        ids = list(s.exec(select(Report.id)))
        row = {"category": "pleural_effusion", "presence": "present", "evidence_start": 0,
               "evidence_end": 5, "evidence_text": "FINDI"}
        queries.replace_proposed_findings(ids[0], "rules", "1-abc", [row], session=s)
        queries.replace_proposed_findings(ids[1], "rules", "1-abc", [], session=s)
        s.add(ExtractionError(report_id=ids[2], extractor="llm", extractor_version="v1:m",
                              message="invalid JSON from model: Expecting value"))
        s.add(IngestError(dataset="openi", item="ecgen-radiology/9.xml",
                          message="report without text (all sections empty)"))
    at = run_page("data")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Studies"] == "3" and metrics["Findings"] == "1"
    assert metrics["Ingest errors"] == "1" and metrics["Extraction errors"] == "1"
    coverage, ingest, extraction = (df.value for df in at.dataframe)
    rules = coverage.set_index("extractor").loc["rules"]
    assert (rules["reports"], rules["present"], rules["errors"]) == (2, 1, 0)
    assert coverage.set_index("extractor").loc["llm", "errors"] == 1
    assert ingest.iloc[0]["error"].startswith("report without text")
    assert extraction.iloc[0]["error"].startswith("invalid JSON")
    assert len(at.get("plotly_chart")) == 1
