"""`python -m pipeline.extract`: file mode, DB mode, skip logic, errors, the extractor factory."""

from __future__ import annotations

import json
import sys
import types
from collections.abc import Iterator, Sequence

import pytest
from sqlmodel import select

from db.engine import session_scope
from db.models import ExtractionError, Finding, FindingStatus, Report
from pipeline.extract import cli
from pipeline.extract import run as extract
from pipeline.extract.findings import Evidence, ExtractedFinding, ExtractionResult
from pipeline.extract.rules.engine import RuleExtractor
from pipeline.settings import get_settings
from tests.factories import make_study

REPORT = ("INDICATION: Cough.\nFINDINGS: No pneumothorax. Small left pleural effusion.\n"
          "IMPRESSION: Likely bibasilar atelectasis.")


def seed(db_url, n: int = 3, report: str = REPORT) -> list[int]:
    with session_scope(db_url) as s:
        for i in range(n):
            make_study(s, key=f"k{i}", report=report)
        return [r.id for r in s.exec(select(Report))]


def findings(db_url) -> list[Finding]:
    with session_scope(db_url) as s:
        return list(s.exec(select(Finding).order_by(Finding.id)))


def errors(db_url) -> list[ExtractionError]:
    with session_scope(db_url) as s:
        return list(s.exec(select(ExtractionError)))


def test_file_mode_writes_one_line_per_input(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text(json.dumps({"id": "r1", "text": REPORT}) + "\n\n"
                   + json.dumps({"id": 7, "text": "Normal chest."}) + "\n")
    assert cli.main(["--input", str(src), "--output", str(out)]) == 0
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["id"] for x in lines] == ["r1", 7] and lines[1]["findings"] == []
    by_cat = {f["category"]: f for f in lines[0]["findings"]}
    eff = by_cat["pleural_effusion"]
    assert set(eff) == {"category", "presence", "severity", "location", "side", "evidence",
                        "extractor"}
    assert (eff["presence"], eff["severity"], eff["side"], eff["location"]["side"]) == (
        "present", "mild", "left", "left")
    assert REPORT[eff["evidence"]["start"]:eff["evidence"]["end"]] == eff["evidence"]["text"]
    assert by_cat["pneumothorax"]["presence"] == "absent"
    assert by_cat["atelectasis"]["presence"] == "uncertain"
    assert "2 reports processed" in capsys.readouterr().out


def test_file_mode_limit_and_bad_lines(tmp_path):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": "Small effusion."}) + "\n" for i in range(5)))
    assert cli.main(["--input", str(src), "--output", str(out), "--limit", "2"]) == 0
    assert len(out.read_text().splitlines()) == 2
    src.write_text(json.dumps({"id": 1}) + "\n{not json\n"
                   + json.dumps({"id": 3, "text": "Small effusion."}) + "\n")
    assert cli.main(["--input", str(src), "--output", str(out)]) == 0
    lines = {str(x["id"]): x for x in map(json.loads, out.read_text().splitlines())}
    assert lines["1"]["error"].startswith('in.jsonl:1: expected {"id"')
    assert lines["None"]["error"].startswith("in.jsonl:2: invalid JSON")
    assert lines["3"]["id"] == 3 and lines["3"]["findings"][0]["category"] == "pleural_effusion"
    src.write_text("{not json\n")
    assert cli.main(["--input", str(src), "--output", str(out)]) == 1  # nothing readable


def test_db_mode_stores_proposed_findings_with_verbatim_evidence(db_url, capsys):
    ids = seed(db_url)
    assert cli.main(["--db", db_url]) == 0
    rows = findings(db_url)
    version = RuleExtractor().version
    assert {r.report_id for r in rows} == set(ids)
    assert all(r.status == FindingStatus.proposed and r.extractor == "rules"
               and r.extractor_version == version for r in rows)
    assert all(REPORT[r.evidence_start:r.evidence_end] == r.evidence_text for r in rows)
    eff = next(r for r in rows if r.category == "pleural_effusion")
    assert (eff.presence.value, eff.severity.value, eff.side.value) == ("present", "mild", "left")
    out = capsys.readouterr().out
    assert "3 reports processed" in out and "reports/s" in out


def test_db_mode_skips_reports_done_by_this_version_and_force_replaces(db_url, capsys):
    seed(db_url, n=2)
    cli.main(["--db", db_url])
    n = len(findings(db_url))
    capsys.readouterr()
    assert cli.main(["--db", db_url]) == 0
    assert "0 reports processed" in capsys.readouterr().out
    assert len(findings(db_url)) == n
    with session_scope(db_url) as s:  # a reviewer accepts one finding
        f = s.exec(select(Finding)).first()
        f.status = FindingStatus.accepted
        reviewed = f.report_id
    before = {r.id: r.created_at for r in findings(db_url)}
    assert cli.main(["--db", db_url, "--force"]) == 0
    assert "1 reports processed" in capsys.readouterr().out
    rows = findings(db_url)
    assert len(rows) == n  # the other report's proposed set replaced; the reviewed one untouched
    assert all((r.created_at == before.get(r.id)) == (r.report_id == reviewed) for r in rows)
    assert sum(r.status == FindingStatus.accepted for r in rows) == 1


def test_db_mode_does_not_redo_normal_reports_but_retries_failed_ones(db_url, monkeypatch, capsys):
    seed(db_url, n=2, report="FINDINGS: Small patient, portable technique.\nIMPRESSION: Unchanged.")
    assert cli.main(["--db", db_url]) == 0
    assert findings(db_url) == []
    capsys.readouterr()
    assert cli.main(["--db", db_url]) == 0
    assert "0 reports processed" in capsys.readouterr().out  # done, though nothing was found

    seed_more = seed(db_url, n=0)
    assert len(seed_more) == 2
    monkeypatch.setattr(cli, "make_extractor", lambda name, **kw: FakeExtractor())
    cli.main(["--db", db_url, "--extractor", "llm"])  # report 1 fails, report 2 succeeds
    capsys.readouterr()
    cli.main(["--db", db_url, "--extractor", "llm"])
    assert "1 reports processed" in capsys.readouterr().out  # only the failed one is retried


def test_db_mode_limit(db_url):
    seed(db_url, n=3)
    cli.main(["--db", db_url, "--limit", "1"])
    assert len({f.report_id for f in findings(db_url)}) == 1


class FakeExtractor:
    """Yields an error for the first report and a rejected + a non-verbatim finding for others."""

    name, version = "llm", "v9:fake-model"
    prompt_version, model = "v9", "fake-model"

    def extract_batch(self, items: Sequence[tuple[str, str]]) -> Iterator[ExtractionResult]:
        for n, (item_id, text) in enumerate(items):
            if n == 0:
                yield ExtractionResult(id=item_id, error="invalid JSON from model: ...")
                continue
            start = text.index("Small")
            good = ExtractedFinding(
                category="pleural_effusion", presence="present",
                evidence=Evidence(start=start, end=start + 5, text="Small"), extractor="llm/v9/fake")
            bad = good.model_copy(update={"category": "edema",
                                          "evidence": Evidence(start=0, end=3, text="nope")})
            yield ExtractionResult(id=item_id, findings=[good, bad], rejected=["hernia: made up"])


def test_db_mode_records_errors_and_rejections_and_goes_on(db_url, monkeypatch, capsys):
    seed(db_url, n=3)
    monkeypatch.setattr(cli, "make_extractor", lambda name, **kw: FakeExtractor())
    assert cli.main(["--db", db_url, "--extractor", "llm"]) == 0
    rows = findings(db_url)
    assert [r.category for r in rows] == ["pleural_effusion", "pleural_effusion"]
    assert all(r.prompt_version == "v9" and r.model_name == "fake-model"
               and r.extractor_version == "v9:fake-model" for r in rows)
    messages = sorted(e.message for e in errors(db_url))
    assert len(messages) == 5
    assert messages[0].startswith("invalid JSON")
    assert sum(m.startswith(extract.REJECTED_PREFIX) for m in messages) == 4
    assert "1 errors" in capsys.readouterr().out


def test_file_mode_holds_every_extractor_to_verbatim_evidence(tmp_path, monkeypatch):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": REPORT}) + "\n" for i in range(2)))
    monkeypatch.setattr(cli, "make_extractor", lambda name, **kw: FakeExtractor())
    assert cli.main(["--input", str(src), "--output", str(out)]) == 0
    _, line = [json.loads(x) for x in out.read_text().splitlines()]
    assert [f["category"] for f in line["findings"]] == ["pleural_effusion"]
    assert line["rejected"] == ["hernia: made up",
                                "edema: evidence is not a verbatim slice of the report"]


def test_exit_code_is_nonzero_only_when_every_report_failed(db_url, monkeypatch):
    seed(db_url, n=1)
    monkeypatch.setattr(cli, "make_extractor", lambda name, **kw: FakeExtractor())
    assert cli.main(["--db", db_url, "--extractor", "llm"]) == 1


def test_make_extractor_builds_rules_and_lazily_the_llm(monkeypatch):
    settings = get_settings()
    assert isinstance(extract.make_extractor("rules", settings=settings), RuleExtractor)
    calls = {}
    fake = types.ModuleType("pipeline.extract.llm.extractor")
    fake.make_llm_extractor = lambda **kw: calls.setdefault("kw", kw) and "llm-extractor"
    monkeypatch.setitem(sys.modules, "pipeline.extract.llm.extractor", fake)
    got = extract.make_extractor("llm", settings=settings, db_url="sqlite://", concurrency=4,
                                 model="m", base_url="http://x")
    assert got == "llm-extractor"
    assert calls["kw"] == {"settings": settings, "db_url": "sqlite://", "concurrency": 4,
                           "model": "m", "base_url": "http://x"}


@pytest.mark.parametrize("argv, message", [
    ([], "choose a mode"),
    (["--input", "a.jsonl"], "--input needs --output"),
    (["--input", "a", "--output", "b", "--db", "sqlite://"], "two modes"),
    (["--db", "sqlite://", "--extractor", "gpt"], "invalid choice"),
    (["--db", "sqlite://", "--concurrency", "0"], "--concurrency"),
    (["--db", "sqlite://", "--api-key", "sk"], "unrecognized arguments"),
])
def test_bad_flags_fail_loudly_naming_the_flag(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    assert "python -m pipeline.extract --input" in out and "python -m pipeline.extract --db" in out
