"""pytest plugin (entry point `routectl`): fixtures to test a routing table in a user's repository.

    def test_coding_chain(explain, snapshot):
        assert explain("collection/my-coding-models", caller="john-dev") == snapshot

Fixtures:
- `routing_table`: the table from `--routing-table PATH` (or the `routing_table` ini option),
  default `generated/routing_table.json`; a `.yaml`/`.yml` path is compiled.
- `explain`: `explain(model, *, caller, tools=False, vision=False, prompt_tokens=0)` -> the data
  of `routectl explain --format json` for a fresh process in which every key env var is set,
  without the table hash, so snapshots change only when routing does.

Loaded by every pytest run in an environment where routectl is installed: it imports only
`routectl.table` (stdlib + orjson) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from routectl.table import DEFAULT_TABLE_PATH

if TYPE_CHECKING:
    from routectl.table import RoutingTable

__all__ = ["explain", "pytest_addoption", "routing_table"]

DEFAULT_TABLE = DEFAULT_TABLE_PATH


def pytest_addoption(parser: pytest.Parser) -> None:
    """--routing-table and the `routing_table` ini option."""
    group = parser.getgroup("routectl", "routing tables (routectl)")
    group.addoption(
        "--routing-table",
        dest="routing_table",
        default=None,
        metavar="PATH",
        help=f"routing table (or routing.yaml) for the routing_table fixture [{DEFAULT_TABLE}]",
    )
    parser.addini("routing_table", f"routing table for the routing_table fixture [{DEFAULT_TABLE}]")


def _table_path(config: pytest.Config) -> Path:
    given = config.getoption("routing_table") or config.getini("routing_table") or DEFAULT_TABLE
    path = Path(str(given))
    return path if path.is_absolute() else config.rootpath / path


@pytest.fixture(scope="session")
def routing_table(request: pytest.FixtureRequest) -> RoutingTable:
    """The routing table under test (verified against its sha256, or compiled from YAML)."""
    from routectl.errors import RoutectlError
    from routectl.review.sources import table_from_file
    from routectl.table import TableError

    path = _table_path(request.config)
    try:
        return table_from_file(path)
    except (RoutectlError, TableError) as exc:
        pytest.fail(f"routectl: cannot load routing table {path}:\n{exc}", pytrace=False)


@pytest.fixture
def explain(routing_table: RoutingTable) -> Callable[..., dict[str, Any]]:
    """A function explaining one request against `routing_table`, as JSON-ready data."""
    from routectl.review.routetest import explain_case

    def _explain(
        model: str,
        *,
        caller: str,
        tools: bool = False,
        vision: bool = False,
        prompt_tokens: int = 0,
    ) -> dict[str, Any]:
        data = explain_case(
            routing_table,
            caller,
            model,
            tools=tools,
            vision=vision,
            prompt_tokens=prompt_tokens,
        )
        data.pop("table", None)
        return data

    return _explain
