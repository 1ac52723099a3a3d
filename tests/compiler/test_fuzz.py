"""Compiler fuzzing: random and mutated routing.yaml documents give diagnostics or a valid table,
never a traceback, a hang or a partial generated/.

`make test` runs a bounded number of examples per property; `make fuzz` runs many more
(ROUTECTL_FUZZ_EXAMPLES). Hostile fragments: alias bombs, deep nesting, huge numbers, duplicate
keys, tabs, a BOM, bytes that are not UTF-8, YAML tags.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routectl.cli import main
from routectl.compiler.build import analyze, read_source
from routectl.errors import ConfigError
from routectl.table import load_table

pytestmark = pytest.mark.slow  # hundreds of documents per property

REPO = Path(__file__).resolve().parents[2]
BASE = (REPO / "tests" / "fixtures" / "valid" / "minimal_base.yaml").read_text()
LINES = BASE.splitlines(keepends=True)
EXAMPLES = int(os.environ.get("ROUTECTL_FUZZ_EXAMPLES", "150"))
# one document's validation must stay well inside this (a sanity bound, not a speed target)
SANE_SECONDS = 20.0

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)

_BOMB = 'x: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)

# fragments a hostile or careless author could put anywhere
HOSTILE = [
    _BOMB,
    "&x [*x]\n",
    "*undefined\n",
    "{a: " * 200 + "1" + "}" * 200,
    "[" * 2000 + "]" * 2000,
    "9" * 100_000,
    "1e400",
    "-.inf",
    ".nan",
    "0x" + "f" * 5000,
    "\t",
    "\ufeff",
    "!!python/object:os.system ls",
    "!!binary aGVsbG8=",
    "!custom 1",
    "<<: {a: 1}",
    "? [a, b]\n: c",
    "version: 1\n",
    "---\nversion: 1\n...\n---\n",
    "%YAML 1.1\n---\n",
    '"\\uD800"',
    "\x00",
    "\x85\u2028\u2029",
    "'unterminated",
    "key: value\nkey: again\n",
    "- - - - -\n",
    "2001-12-14t21:59:43.10-05:00",
    "~",
    "" * 3,
    "é" * 1000,
]


def _check_outcome(text: str) -> None:
    started = time.monotonic()
    config, diagnostics = analyze(text)
    assert time.monotonic() - started < SANE_SECONDS
    # a valid config or diagnostics, never both, never neither
    assert (config is None) == bool(diagnostics)
    for d in diagnostics:
        assert d.line >= 1 and d.col >= 1
        assert isinstance(d.message, str) and d.message


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The base document with lines deleted, duplicated, swapped or hostile text spliced in."""
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "replace", "splice", "swap"]))
        i = draw(st.integers(0, len(lines) - 1))
        if op == "delete" and len(lines) > 1:
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "insert":
            lines.insert(i, draw(st.sampled_from(HOSTILE)) + "\n")
        elif op == "replace":
            # a value replaced: keep the key and indentation, put something hostile after it
            head, sep, _ = lines[i].partition(": ")
            if sep:
                lines[i] = head + sep + draw(st.sampled_from(HOSTILE)) + "\n"
        else:
            line = lines[i]
            at = draw(st.integers(0, len(line)))
            junk = draw(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20)))
            lines[i] = line[:at] + junk + line[at:]
    return "".join(lines)


@FUZZ
@given(mutated())
def test_mutated_documents_give_diagnostics_or_a_table(text: str) -> None:
    _check_outcome(text)


@FUZZ
@given(st.text(max_size=400))
def test_random_text_gives_diagnostics_or_a_table(text: str) -> None:
    _check_outcome(text)


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_TREES = st.recursive(
    _SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=4),
    ),
    max_leaves=30,
)


@FUZZ
@given(st.sampled_from(sorted(yaml.safe_load(BASE))), _TREES)
def test_any_value_under_any_top_level_key(key: str, value: object) -> None:
    data = yaml.safe_load(BASE)
    data[key] = value
    _check_outcome(yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(st.binary(max_size=200), st.integers(0, len(BASE)))
def test_bytes_that_are_not_utf8_are_a_diagnostic(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes, at: int
) -> None:
    raw = BASE.encode()[:at] + junk + BASE.encode()[at:]
    path = tmp_path_factory.mktemp("raw") / "routing.yaml"
    path.write_bytes(raw)
    try:
        text, name = read_source(path, None, None)
    except ConfigError as exc:
        assert len(exc.diagnostics) == 1
        assert "not UTF-8" in exc.diagnostics[0].message
        return
    config, diagnostics = analyze(text, name)
    assert (config is None) == bool(diagnostics)


def _tree(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@settings(FUZZ, max_examples=max(10, EXAMPLES // 5))
@given(mutated())
def test_compile_writes_a_whole_table_or_nothing(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    project = tmp_path_factory.mktemp("project")
    (project / "routing.yaml").write_text(BASE)
    out = project / "generated"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["compile", str(project / "routing.yaml"), "--out", str(out)]).exit_code
        == 0
    )
    before = _tree(out)
    (project / "routing.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    result = runner.invoke(main, ["compile", str(project / "routing.yaml"), "--out", str(out)])
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code == 1:
        assert _tree(out) == before  # nothing written
    else:
        load_table(out / "routing_table.json")  # a whole, verified table
        check = runner.invoke(main, ["check", str(project / "routing.yaml"), "--out", str(out)])
        assert check.exit_code == 0, check.output
    assert [p.name for p in project.iterdir() if p.name.startswith(".")] == []
