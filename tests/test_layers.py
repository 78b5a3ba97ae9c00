"""Imports flow one way (ARCHITECTURE.md): curation_app → pipeline → (db, model).

- db and model import nothing of ours; pipeline/demo (the synthetic corpus generator, a leaf)
  imports nothing of ours either, and pipeline's shared top-level modules no stage package;
- streamlit_app.py imports curation_app only; nothing else imports curation_app;
- bench/ imports db, model and pipeline (and the fake LLM server of tests/fakes);
- only curation_app and streamlit_app.py import streamlit;
- pages hold no SQL: curation_app/pages/*.py import nothing from sqlalchemy / sqlmodel and
  execute nothing; they call db.queries functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"db", "model", "pipeline", "curation_app", "tests"}
ALLOWED = {"db": set(), "model": set(), "pipeline": {"db", "model"},
           "curation_app": {"db", "model", "pipeline"}}
SQL_MODULES = {"sqlalchemy", "sqlmodel"}
SQL_CALLS = {"exec", "execute", "scalar", "scalars", "query", "select", "text"}


def _module_name(path: Path) -> str:
    if not path.is_relative_to(ROOT):  # a probe file outside the tree: a top-level module
        return path.stem
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(path: Path) -> set[str]:
    """Full dotted names of every module ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else \
        _module_name(path)
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                head = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*head, *([base] if base else [])])
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}  # `from pkg import submodule`
    return names


def _imports(path: Path) -> set[str]:
    """Top-level package names ``path`` imports."""
    return {m.split(".")[0] for m in _imported_modules(path)}


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def _bad(files: list[Path], allowed: set[str]) -> dict[str, list[str]]:
    found = {str(f.relative_to(ROOT)): sorted((_imports(f) & OURS) - allowed) for f in files}
    return {f: b for f, b in found.items() if b}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package):
    assert _bad(_files(package), ALLOWED[package] | {package}) == {}


def test_the_demo_generator_is_a_leaf():
    bad = {str(f.relative_to(ROOT)): sorted(
        m for m in _imported_modules(f) if m.split(".")[0] in OURS
        and not (m == "pipeline.demo" or m.startswith("pipeline.demo.")))
        for f in _files("pipeline/demo")}
    assert {f: b for f, b in bad.items() if b} == {}


def test_shared_pipeline_modules_import_no_stage():
    stages = {p.name for p in (ROOT / "pipeline").iterdir() if (p / "__init__.py").exists()}
    bad = {f.name: sorted(m for m in _imported_modules(f)
                          if m.split(".")[:2][-1] in stages and m.startswith("pipeline."))
           for f in sorted((ROOT / "pipeline").glob("*.py"))}
    assert {f: b for f, b in bad.items() if b} == {}


def test_streamlit_app_imports_only_curation_app():
    assert _imports(ROOT / "streamlit_app.py") & OURS == {"curation_app"}


def test_bench_imports_the_library_not_the_app():
    """bench/ reaches db, model, pipeline; of tests only the fake LLM server (a double that the
    LLM benchmark and the tests share); never the app or streamlit."""
    bad = {}
    for f in _files("bench"):
        wrong = sorted(m for m in _imported_modules(f)
                       if m.split(".")[0] in ({"curation_app", "streamlit"})
                       or (m.split(".")[0] == "tests" and not m.startswith("tests.fakes")))
        if wrong:
            bad[str(f.relative_to(ROOT))] = wrong
    assert bad == {}


@pytest.mark.parametrize("package", ["db", "model", "pipeline", "bench"])
def test_only_the_app_imports_streamlit(package):
    assert [str(f.relative_to(ROOT)) for f in _files(package) if "streamlit" in _imports(f)] == []


def _sql_in(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = sorted(m for m in _imported_modules(path) if m.split(".")[0] in SQL_MODULES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            if name in SQL_CALLS:
                found.append(f"line {node.lineno}: {name}(...)")
    return found


@pytest.mark.parametrize("page", sorted((ROOT / "curation_app" / "pages").glob("*.py")),
                         ids=lambda p: p.name)
def test_pages_hold_no_sql(page):
    assert _sql_in(page) == []


def test_the_sql_check_sees_sql(tmp_path):
    page = ROOT / "curation_app" / "pages" / "studies.py"
    probe = tmp_path / "probe.py"
    probe.write_text(page.read_text() + "\nfrom sqlmodel import select\nsession.exec(select(1))\n")
    assert len(_sql_in(probe)) == 4  # sqlmodel, sqlmodel.select, exec(...), select(...)


def test_tests_take_helpers_from_factories_and_fakes_only():
    """Builders and helpers live in tests/factories.py (doubles in tests/fakes/), never in
    another test module or a conftest: a test imports no other test file."""
    allowed = ("tests.factories", "tests.fakes")
    bad = {}
    for f in sorted((ROOT / "tests").rglob("*.py")):
        wrong = sorted(m for m in _imported_modules(f) if m.split(".")[0] == "tests"
                       and not any(m == a or m.startswith(a + ".") for a in allowed))
        if wrong:
            bad[str(f.relative_to(ROOT))] = wrong
    assert bad == {}
