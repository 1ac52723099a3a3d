"""`routectl test`: routing cases from routes.yaml pass and fail as they should."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from routectl.cli import main
from routectl.review.routetest import RouteTestError, check_case, parse_cases
from routectl.table import RoutingTable

from .conftest import BASE_YAML, ENV

PASSING = """
cases:
  - name: ann's own key first
    as: ann
    model: collection/chain
    expect: {first: openai/gpt-a, connection: ann-openai}
  - name: team pool order with tools
    as: bob
    model: collection/team-pool
    tools: true
    expect: {order: [openai/gpt-b, team/echo/echo-1, echo/echo-mini]}
  - name: a long prompt drops echo-mini
    as: cid
    model: collection/split
    prompt_tokens: 10000
    expect: {order: [echo/echo-1]}
  - as: cid
    model: collection/team-pool
    expect: {error: access_denied}
"""

FAILING = """
- name: wrong first choice
  as: bob
  model: collection/chain
  expect: {first: echo/echo-1}
- name: wrong error
  as: ann
  model: collection/split
  expect: {error: access_denied}
- name: right
  as: bob
  model: openai/gpt-b
  expect: {first: openai/gpt-b, connection: team-openai}
"""


def test_cli_passing_cases(write_config: Callable[..., Path]) -> None:
    config = write_config(BASE_YAML)
    routes = write_config(PASSING, "routes.yaml")
    result = CliRunner().invoke(main, ["test", str(routes), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "PASS  ann's own key first",
        "PASS  team pool order with tools",
        "PASS  a long prompt drops echo-mini",
        "PASS  cid -> collection/team-pool",
        "4 case(s): 4 passed, 0 failed",
    ]


def test_cli_failing_cases_exit_1(write_config: Callable[..., Path]) -> None:
    config = write_config(BASE_YAML)
    routes = write_config(FAILING, "routes.yaml")
    result = CliRunner().invoke(main, ["test", str(routes), "--config", str(config)])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "FAIL  wrong first choice",
        "      expected first choice echo/echo-1, got openai/gpt-a",
        "FAIL  wrong error",
        "      expected error access_denied, got first choice echo/echo-1",
        "PASS  right",
        "3 case(s): 1 passed, 2 failed",
    ]


def test_real_credentials_change_the_outcome(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(BASE_YAML)
    routes = write_config(PASSING, "routes.yaml")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REVIEW_TEST_ANN_KEY")
    result = CliRunner().invoke(
        main, ["test", str(routes), "--config", str(config), "--real-credentials"]
    )
    # without ann's key her first choice is still gpt-a, through the team's key
    assert result.exit_code == 1
    assert "4 case(s): 3 passed, 1 failed" in result.output
    assert "FAIL  ann's own key first\n      expected connection ann-openai, got team-openai" in (
        result.output
    )


def test_order_mismatch_names_both(base_table: RoutingTable) -> None:
    (case,) = parse_cases(
        [{"as": "bob", "model": "collection/team-pool", "expect": {"order": ["echo/echo-mini"]}}]
    )
    result = check_case(base_table, case)
    assert result.problem == (
        "expected order ['echo/echo-mini'], got "
        "['openai/gpt-b', 'team/echo/echo-1', 'echo/echo-mini']"
    )


def test_unknown_caller_fails_the_case(base_table: RoutingTable) -> None:
    (case,) = parse_cases([{"as": "zed", "model": "collection/split", "expect": {"first": "x"}}])
    assert check_case(base_table, case).problem == "no user 'zed' in the routing table"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "non-empty list"),
        ([{"as": "ann", "model": "m", "expect": {"first": "x"}, "oops": 1}], "unknown keys: oops"),
        ([{"model": "m", "expect": {"first": "x"}}], "cases[0].as is required"),
        ([{"as": "a", "model": "m", "expect": {"best": "x"}}], "expect must have"),
        ([{"as": "a", "model": "m", "expect": {"error": "e", "first": "x"}}], "cannot be combined"),
        ([{"as": "a", "model": "m", "expect": {"order": "x"}}], "must be a list"),
    ],
)
def test_malformed_cases(data: object, message: str) -> None:
    with pytest.raises(RouteTestError, match=re.escape(message)):
        parse_cases(data)


def test_cli_malformed_file_exits_1(write_config: Callable[..., Path]) -> None:
    config = write_config(BASE_YAML)
    routes = write_config("- {as: ann}\n", "routes.yaml")
    result = CliRunner().invoke(main, ["test", str(routes), "--config", str(config)])
    assert result.exit_code == 1
    assert "cases[0].model is required" in result.output


def test_the_example_routes_pass_on_the_repository_config() -> None:
    root = Path(__file__).parents[2]
    result = CliRunner().invoke(
        main,
        ["test", str(root / "examples/ci/routes.yaml"), "--config", str(root / "routing.yaml")],
    )
    assert result.exit_code == 0, result.output
