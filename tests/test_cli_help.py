"""Every command-line entry point documents itself: a module docstring with examples, and help
text on every flag and sub-command (sqlite-utils' rule: a command without help is a bug)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil

import pytest

import pipeline

# Every stage is a package with a cli.py (python -m pipeline.<stage> runs its __main__.py).
STAGES = sorted(m.name for m in pkgutil.iter_modules(pipeline.__path__) if m.ispkg
                and importlib.util.find_spec(f"pipeline.{m.name}.__main__") is not None)
MODULES = ["db.__main__"] + [f"pipeline.{s}.cli" for s in STAGES]


def test_stages_are_found():
    assert {"ingest", "extract", "knowledge", "demo"} <= set(STAGES)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_has_a_cli(stage):
    cli = importlib.import_module(f"pipeline.{stage}.cli")
    assert callable(cli.main) and callable(cli.parse_args)


class _Captured(Exception):
    def __init__(self, parser):
        self.parser = parser


def _parser_of(module) -> argparse.ArgumentParser:
    """Call the module's parse_args and catch the parser it builds before it parses."""
    original = argparse.ArgumentParser.parse_known_args

    def capture(self, *a, **k):
        raise _Captured(self)

    argparse.ArgumentParser.parse_known_args = capture
    try:
        module.parse_args([])
    except _Captured as c:
        return c.parser
    finally:
        argparse.ArgumentParser.parse_known_args = original
    raise AssertionError(f"{module.__name__}.parse_args built no parser")


def _undocumented(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS:
            continue
        name = prefix + (action.option_strings[0] if action.option_strings else action.dest)
        if isinstance(action, argparse._SubParsersAction):
            helped = {a.dest for a in action._choices_actions if a.help}
            missing += [f"{prefix}{c} (sub-command)" for c in action.choices if c not in helped]
            for cname, sub in action.choices.items():
                missing += _undocumented(sub, f"{prefix}{cname} ")
        elif not action.help:
            missing.append(name)
    return missing


@pytest.mark.parametrize("name", MODULES)
def test_every_flag_has_help(name):
    module = importlib.import_module(name)
    assert _undocumented(_parser_of(module)) == []


@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_has_examples(name):
    module = importlib.import_module(name)
    runnable = "python -m " + name.removesuffix(".__main__").removesuffix(".cli")
    assert (module.__doc__ or "").count(runnable) >= 2, f"{name}: give two `{runnable} …` examples"
    assert callable(getattr(module, "main", None))
