"""Values that cannot survive the table's JSON and PostgreSQL, wherever they are in the file."""

from __future__ import annotations

import math
from typing import Any

from routectl.compiler.loader import Document, PathKey
from routectl.compiler.validate.index import Index
from routectl.compiler.validate.shapes import as_dict
from routectl.errors import Diagnostic

__all__ = ["check_values"]

_INT64 = (-(2**63), 2**63 - 1)


def check_values(doc: Document, index: Index) -> list[Diagnostic]:
    """NUL characters, non-finite numbers and integers beyond 64 bits, each where it stands."""
    data = as_dict(doc.data)
    if not _has_bad_value(data):  # a quick scan first: paths are built only when one is found
        return []
    return _bad_values(doc, data, ())


def _leaf_problem(value: Any) -> str | None:
    """Why one value cannot survive the table's JSON and PostgreSQL, or None."""
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            return "must not contain a NUL character (\\0): PostgreSQL text cannot hold it"
    elif kind is float:
        if not math.isfinite(value):
            return f"must be a finite number; got {value}"
    elif kind is int and not _INT64[0] <= value <= _INT64[1]:
        return "integer out of range: it must fit in 64 bits"
    return None


def _has_bad_value(data: Any) -> bool:
    stack = [data]
    while stack:
        value = stack.pop()
        kind = type(value)
        if kind is dict:
            stack.extend(value.values())
        elif kind is list:
            stack.extend(value)
        elif _leaf_problem(value) is not None:
            return True
    return False


def _bad_values(doc: Document, value: Any, path: PathKey) -> list[Diagnostic]:
    if isinstance(value, dict):
        return [d for k, v in value.items() for d in _bad_values(doc, v, (*path, k))]
    if isinstance(value, list):
        return [d for i, v in enumerate(value) for d in _bad_values(doc, v, (*path, i))]
    problem = _leaf_problem(value)
    return [] if problem is None else [doc.diagnostic(path, problem)]
