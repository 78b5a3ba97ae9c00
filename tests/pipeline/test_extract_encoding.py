"""File mode: a line that is not UTF-8 becomes an error line like any malformed one; the other
lines are extracted and written."""

from __future__ import annotations

import json

from pipeline.extract import cli


def test_a_non_utf8_line_is_an_error_line(tmp_path, capsys):
    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    good = json.dumps({"id": "a", "text": "Small left pleural effusion."}).encode()
    bad = '{"id": "b", "text": "Épanchement pleural."}'.encode("latin-1")
    src.write_bytes(good + b"\n" + bad + b"\n" + good.replace(b'"a"', b'"c"') + b"\n")
    assert cli.main(["--input", str(src), "--output", str(out)]) == 0
    lines = {x["id"]: x for x in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    assert set(lines) == {"a", None, "c"}
    assert "in.jsonl:2: not UTF-8" in lines[None]["error"] and lines[None]["findings"] == []
    assert lines["a"]["findings"] and lines["c"]["findings"]
    assert "3 reports processed" in capsys.readouterr().out
