"""Helpers shared by the query modules."""

from __future__ import annotations

from collections.abc import Iterator

IN_CHUNK = 500  # keys per IN (...) list, well under SQLite's bound-parameter limit


def chunks(values: list, size: int = IN_CHUNK) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i:i + size]
