"""Imports flow one way (ARCHITECTURE.md): curation_app → pipeline → (db, model).

db and model import nothing of ours; only curation_app and streamlit_app import streamlit;
nothing but streamlit_app imports curation_app.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"db", "model", "pipeline", "curation_app"}
ALLOWED = {"db": set(), "model": set(), "pipeline": {"db", "model"},
           "curation_app": {"db", "model", "pipeline"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package):
    bad = {str(f.relative_to(ROOT)): sorted((_imports(f) & OURS) - ALLOWED[package] - {package})
           for f in _files(package)}
    assert {f: b for f, b in bad.items() if b} == {}


@pytest.mark.parametrize("package", ["db", "model", "pipeline"])
def test_only_the_app_imports_streamlit(package):
    assert [str(f.relative_to(ROOT)) for f in _files(package) if "streamlit" in _imports(f)] == []


def test_tests_take_helpers_from_factories_and_fakes_only():
    """Builders and helpers live in tests/factories.py (doubles in tests/fakes/), never in
    another test module or a conftest: a test imports no other test file."""
    allowed = ("tests.factories", "tests.fakes")
    bad = {}
    for f in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(f.read_text(), filename=str(f))
        mods = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        mods |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        wrong = sorted(m for m in mods if m.split(".")[0] == "tests"
                       and not any(m == a or m.startswith(a + ".") for a in allowed))
        if wrong:
            bad[str(f.relative_to(ROOT))] = wrong
    assert bad == {}
