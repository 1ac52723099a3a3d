"""Any value of the wrong shape anywhere gives diagnostics, never a crash."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from routectl.compiler.build import analyze

BASE = Path(__file__).resolve().parents[1] / "fixtures" / "valid" / "minimal_base.yaml"
REPLACEMENTS: list[Any] = [None, 7, "x", [{"k": 1}], True]


def paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from paths(value, (*prefix, i))


def replaced(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    out = copy.deepcopy(data)
    target = out
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return out


def test_every_node_replaced_by_every_shape_is_reported_not_crashed() -> None:
    data = yaml.safe_load(BASE.read_text())
    assert analyze(yaml.safe_dump(data))[1] == []
    checked = 0
    for path in paths(data):
        for value in REPLACEMENTS:
            text = yaml.safe_dump(replaced(data, path, value))
            config, diagnostics = analyze(text)
            # either still valid (e.g. a free-form string) or reported, and never both
            assert (config is None) == bool(diagnostics), (path, value)
            checked += 1
    assert checked > 300
