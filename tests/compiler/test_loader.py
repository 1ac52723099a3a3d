"""The YAML loader: plain data, line:col of any node, duplicate keys, syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from routectl.compiler import loader
from routectl.compiler.loader import format_path, load_document

TEXT = """\
version: 1
collections:
  flash2.5:
    members:
      - {model: a/b, weight: 0.5}
      - model: c/d
        weight: 1.5
"""


def test_data_is_plain() -> None:
    doc = load_document(TEXT)
    assert doc.diagnostics == []
    assert doc.data["collections"]["flash2.5"]["members"][1] == {"model": "c/d", "weight": 1.5}


def test_marks_of_values_and_keys() -> None:
    doc = load_document(TEXT)
    path = ("collections", "flash2.5", "members", 1, "weight")
    assert doc.mark(path) == (7, 17)
    assert doc.mark(path, key=True) == (7, 9)
    assert doc.mark(("collections", "flash2.5", "members", 0, "weight")) == (5, 30)
    assert doc.mark(("version",)) == (1, 10)
    # a path that does not exist points at its nearest existing parent
    assert doc.mark(("collections", "flash2.5", "members", 1, "nope")) == (6, 9)
    assert doc.mark(()) == (1, 1)


def test_format_path() -> None:
    assert format_path(("collections", "flash2.5", "members", 1, "weight")) == (
        "collections.flash2.5.members[1].weight"
    )
    assert format_path(()) == ""
    assert format_path(("connections", 0)) == "connections[0]"


def test_duplicate_keys_are_errors_not_overwrites() -> None:
    doc = load_document("a: 1\nb: 2\na: 3\n", "x.yaml")
    assert doc.data == {"a": 1, "b": 2}
    [d] = doc.diagnostics
    assert d.format() == "x.yaml:3:1: error: a: duplicate key 'a' (first defined at line 1)"


def test_syntax_error_has_line_and_column() -> None:
    doc = load_document("a:\n  b: [1, 2\n  c: 3\n", "x.yaml")
    assert doc.data is None
    [d] = doc.diagnostics
    assert (d.line, d.col) == (3, 4)
    assert d.message.startswith("YAML syntax error:")


def test_yaml_1_1_scalars_and_dates() -> None:
    doc = load_document("a: yes\nb: ~\nc: 0x10\nd: 2024-05-01\ne: '5'\nf: 1_000\n")
    assert doc.data == {"a": True, "b": None, "c": 16, "d": "2024-05-01", "e": "5", "f": 1000}


def test_non_string_and_merge_keys_are_reported() -> None:
    doc = load_document("base: &b {x: 1}\n200: ok\nother:\n  <<: *b\n")
    messages = [d.message for d in doc.diagnostics]
    assert messages == [
        "key '200' is read as an integer; quote it to make it a name",
        "YAML merge keys (<<) are not supported; write the keys out",
    ]


def test_python_tags_are_refused() -> None:
    doc = load_document("a: !!python/object:os.system {}\n")
    assert [d.message for d in doc.diagnostics] == [
        "unsupported YAML tag 'tag:yaml.org,2002:python/object:os.system'"
    ]
    doc = load_document("a: !!python/name:os.system x\n")
    assert doc.data is None
    assert doc.diagnostics[0].message.startswith("YAML error")


# The fast path (parser events) and the node path (composed tree) must build the same data;
# anything the fast path cannot vouch for must fall back to the node path.
_ROOT = Path(__file__).resolve().parents[2]
_YAML_FILES = sorted(
    [_ROOT / "routing.yaml", *(_ROOT / "tests" / "fixtures").rglob("*.yaml")], key=str
)
_AWKWARD = [
    "a: 0x1F\nb: 1_000\nc: .inf\nd: -.5e3\ne: 0o17\nf: 1:30\n",
    "a: yes\nb: On\nc: ~\nd: null\ne: ''\nf: '1'\ng: 2026-11-22\n",
    "a: 'it''s'\nb: \"tab\\there\"\nc: |\n  multi\n  line\n",
]


@pytest.mark.parametrize("path", _YAML_FILES, ids=lambda p: p.name)
def test_fast_path_builds_the_same_data_as_the_node_path(path: Path) -> None:
    text = path.read_text()
    try:
        fast = loader._plain_data(text)
    except loader._Fallback:
        return  # this file legitimately needs the node path (it has something to report)
    assert fast == loader._load_nodes(text, path.name).data


@pytest.mark.parametrize("text", _AWKWARD)
def test_fast_path_agrees_on_awkward_scalars(text: str) -> None:
    assert loader._plain_data(text) == loader._load_nodes(text, "x.yaml").data


@pytest.mark.parametrize(
    "text",
    [
        "base: &b {x: 1}\nother: *b\n",  # anchors and aliases
        "a: !!str 1\n",  # explicit tag
        "a: 1\na: 2\n",  # duplicate key
        "? [1, 2]\n: x\n",  # non-name key
        "a: [1, 2\n",  # syntax error
    ],
)
def test_rare_features_fall_back_to_the_node_path(text: str) -> None:
    with pytest.raises(loader._Fallback):
        loader._plain_data(text)


def test_the_repo_config_takes_the_fast_path() -> None:
    text = (_ROOT / "routing.yaml").read_text()
    assert loader._plain_data(text)["version"] == 1


@pytest.mark.parametrize(
    ("text", "value"),
    [("1e-7", 1e-7), ("1.5e7", 1.5e7), ("2E+6", 2e6), (".5e3", 500.0), ("1.0", 1.0), ("10", 10)],
)
def test_exponent_floats_are_numbers(text: str, value: float) -> None:
    # YAML 1.1 reads `1e-7` and `1.5e7` as strings; people and YAML 1.2 mean numbers
    data = load_document(f"price: {text}\n").data
    assert data == {"price": value} and type(data["price"]) is type(value)


def test_exponent_lookalikes_stay_strings() -> None:
    assert load_document("a: [e7, 1e, 1.2.3e4, '1e7']\n").data == {
        "a": ["e7", "1e", "1.2.3e4", "1e7"]
    }
