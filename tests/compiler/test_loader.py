"""The YAML loader: plain data, line:col of any node, duplicate keys, syntax errors."""

from __future__ import annotations

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
