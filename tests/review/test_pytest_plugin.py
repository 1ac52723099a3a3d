"""The pytest plugin: users snapshot-test their own tables with `routing_table` and `explain`."""

from __future__ import annotations

import pytest

from routectl.compiler import build_table
from routectl.table import dump_table

from .conftest import BASE_YAML, variant

pytest_plugins = ["pytester"]

USER_TESTS = """
def test_chain(explain, snapshot):
    assert explain("collection/chain", caller="bob") == snapshot


def test_split_with_tools(explain, snapshot):
    assert explain("collection/split", caller="cid", tools=True) == snapshot


def test_table(routing_table):
    assert sorted(routing_table.collections) == ["ann-only", "chain", "split", "team-pool"]
"""


def _write_table(pytester: pytest.Pytester, text: str) -> None:
    raw, _ = dump_table(build_table("routing.yaml", text=text))
    (pytester.path / "generated").mkdir(exist_ok=True)
    (pytester.path / "generated" / "routing_table.json").write_bytes(raw)


def test_snapshots_pass_then_catch_a_routing_change(pytester: pytest.Pytester) -> None:
    _write_table(pytester, BASE_YAML)
    pytester.makepyfile(test_routing=USER_TESTS)
    pytester.runpytest("-p", "no:cacheprovider", "--snapshot-update").assert_outcomes(passed=3)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=3)
    # bob loses the team: his first choice for the chain moves to the platform key
    _write_table(pytester, variant(("members: [ann, bob]", "members: [ann]")))
    result = pytester.runpytest("-p", "no:cacheprovider", "-vv")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_routing.py::test_chain*"])
    result.stdout.fnmatch_lines(["*'connection': 'platform-openai'*"])


def test_routing_table_option_compiles_yaml(pytester: pytest.Pytester) -> None:
    (pytester.path / "conf").mkdir()
    (pytester.path / "conf" / "routing.yaml").write_text(BASE_YAML, encoding="utf-8")
    pytester.makepyfile(
        test_option="""
def test_loaded(routing_table, explain):
    assert routing_table.collections["split"].strategy == "weighted"
    assert explain("collection/chain", caller="ann")["candidates"][0]["connection"] == "ann-openai"
    assert "table" not in explain("collection/chain", caller="ann")
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--routing-table", "conf/routing.yaml")
    result.assert_outcomes(passed=1)


def test_missing_table_fails_with_a_clear_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_missing="def test_x(routing_table):\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*routectl: cannot load routing table*routing_table.json*"])


def test_ini_option(pytester: pytest.Pytester) -> None:
    _write_table(pytester, BASE_YAML)
    (pytester.path / "generated" / "routing_table.json").rename(pytester.path / "t.json")
    pytester.makeini("[pytest]\nrouting_table = t.json\n")
    pytester.makepyfile(test_ini="def test_x(routing_table):\n    assert routing_table.sha256\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
