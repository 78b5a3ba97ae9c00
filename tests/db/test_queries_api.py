"""db.queries' public face: each module says what it exports (``__all__``), the package exports
exactly their union, and no query module reaches into another's private names (shared helpers
live in ``db/queries/_common.py``)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import db.queries

QUERIES = Path(db.queries.__file__).parent
MODULES = sorted(p.stem for p in QUERIES.glob("*.py") if not p.stem.startswith("_"))


def _tree(stem: str) -> ast.Module:
    path = QUERIES / f"{stem}.py"
    return ast.parse(path.read_text(), filename=str(path))


def test_star_import_gives_exactly_the_union_of_the_modules_all():
    namespace: dict = {}
    exec("from db.queries import *", namespace)  # noqa: S102 (the very import under test)
    union = set().union(*(importlib.import_module(f"db.queries.{m}").__all__ for m in MODULES))
    assert set(namespace) - {"__builtins__"} == union


@pytest.mark.parametrize("stem", MODULES)
def test_every_module_exports_its_public_functions_and_classes(stem):
    module = importlib.import_module(f"db.queries.{stem}")
    defined = {n.name for n in _tree(stem).body
               if isinstance(n, ast.FunctionDef | ast.ClassDef) and not n.name.startswith("_")}
    assert isinstance(module.__all__, list | tuple)
    assert defined <= set(module.__all__), f"{stem}: add to __all__ {sorted(defined - set(module.__all__))}"
    assert all(hasattr(module, name) and not name.startswith("_") for name in module.__all__)


def test_no_two_modules_export_one_name():
    seen: dict[str, str] = {}
    for stem in MODULES:
        for name in importlib.import_module(f"db.queries.{stem}").__all__:
            assert name not in seen, f"{name} exported by {seen[name]} and {stem}"
            seen[name] = stem


@pytest.mark.parametrize("stem", [*MODULES, "__init__"])
def test_private_names_cross_modules_only_from_common(stem):
    crossings = [f"{node.module}.{alias.name}" for node in ast.walk(_tree(stem))
                 if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("db.queries")
                 and node.module != "db.queries._common"
                 for alias in node.names if alias.name.startswith("_")]
    assert crossings == []
