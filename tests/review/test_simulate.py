"""`routectl simulate`: the runtime's strategies against a seeded simulated upstream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from syrupy.assertion import SnapshotAssertion

from routectl.cli import main
from routectl.review.simulate import Simulation, simulate
from routectl.runtime.index import TableIndex
from routectl.runtime.resolve import resolve
from routectl.table import RoutingTable

from .conftest import BASE_YAML, build, variant


def _run(table: RoutingTable, collection: str, n: int, **kw: Any) -> Simulation:
    index = TableIndex(table)
    caller = index.callers["bob"]
    route = resolve(index, caller, f"collection/{collection}").route
    return simulate(table, caller, route, n, **kw)


def test_weighted_split_is_exact(base_table: RoutingTable) -> None:
    sim = _run(base_table, "split", 1000)
    served = {s.member: s.served for s in sim.members.values()}
    assert served == {"echo/echo-1": 500, "echo/echo-mini": 500}


def test_same_seed_same_result_and_seed_matters(base_table: RoutingTable) -> None:
    fail = {"openai/gpt-b": 0.4}
    a = _run(base_table, "team-pool", 600, fail=fail, seed=3)
    b = _run(base_table, "team-pool", 600, fail=fail, seed=3)
    c = _run(base_table, "team-pool", 600, fail=fail, seed=4)
    assert a == b
    assert a != c


def test_failures_show_fallbacks_and_cooldowns(base_table: RoutingTable) -> None:
    sim = _run(base_table, "chain", 500, fail={"openai/gpt-a": 0.5}, seed=1)
    assert sim.fallbacks > 0
    assert sim.cooldowns > 0
    members = sim.members
    assert members["openai/gpt-a"].failed_attempts > 0
    assert members["echo/echo-1"].served > 0  # the fallback member took over
    assert sim.served == 500
    healthy = _run(base_table, "chain", 500, seed=1)
    assert healthy.fallbacks == 0
    assert healthy.members["openai/gpt-a"].served == 500


def test_everything_failing_counts_errors(base_table: RoutingTable) -> None:
    sim = _run(base_table, "split", 100, fail={"echo/echo-1": 1.0, "echo/echo-mini": 1.0})
    assert sim.served == 0
    assert sim.upstream_errors + sim.no_model == 100
    assert sim.no_model > 0  # every deployment cooling down


def test_cli_output_is_reproducible(
    write_config: Callable[..., Path], snapshot: SnapshotAssertion
) -> None:
    config = write_config(BASE_YAML)
    args = [
        "simulate",
        "chain",
        "--as",
        "ann",
        "-n",
        "300",
        "--fail",
        "openai/gpt-a=0.3",
        "--seed",
        "7",
        "--config",
        str(config),
    ]
    runner = CliRunner()
    first = runner.invoke(main, args)
    second = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert first.output == second.output
    assert first.output == snapshot


def test_cli_rejects_unknown_fail_model(write_config: Callable[..., Path]) -> None:
    config = write_config(BASE_YAML)
    result = CliRunner().invoke(
        main,
        ["simulate", "chain", "--as", "ann", "--fail", "openai/gpt-z=0.3", "--config", str(config)],
    )
    assert result.exit_code == 2
    assert "openai/gpt-z not in collection/chain" in result.output
    result = CliRunner().invoke(
        main,
        ["simulate", "chain", "--as", "ann", "--fail", "openai/gpt-a=2", "--config", str(config)],
    )
    assert result.exit_code == 2


def test_a_failure_outside_fallback_on_goes_to_the_client_without_a_fallback() -> None:
    # split falls back only on 429: a simulated 503 is answered as it came, like the runtime does
    table = build(
        variant(
            (
                "      min_models_available: 2\n",
                "      min_models_available: 2\n    fallback_on: [429]\n",
            )
        )
    )
    sim = _run(table, "split", 1000, fail={"echo/echo-1": 1.0})
    assert sim.fallbacks == 0 and sim.upstream_errors == 0
    assert sim.passed_through == sim.members["echo/echo-1"].first_choice > 0
    assert sim.served == 1000 - sim.passed_through
