"""CLI commands: review (diff, explain, simulate, test)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from routectl.table import DEFAULT_TABLE_PATH


def _fail_config(exc: Exception) -> NoReturn:
    """Print a config or table problem and exit 1 (the SPEC's 'config is invalid')."""
    click.echo(str(exc), err=True)
    sys.exit(1)


def _load_or_exit(load: Callable[[], Any]) -> Any:
    from routectl.errors import ConfigError
    from routectl.review.sources import SourceError
    from routectl.table import TableError

    try:
        return load()
    except SourceError as exc:
        raise click.UsageError(str(exc)) from exc
    except (ConfigError, TableError) as exc:
        _fail_config(exc)


@click.command("diff")
@click.argument("config", default="routing.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--base", "base", metavar="GIT_REF", help="Compare with CONFIG as it is at this git ref."
)
@click.option(
    "--old",
    "old",
    type=click.Path(exists=True, dir_okay=False),
    help="Compare with this older routing.yaml (or compiled routing_table.json).",
)
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown")
@click.option("--exit-code", is_flag=True, help="Exit 1 when the change has any effect.")
def diff_command(config: str, base: str | None, old: str | None, fmt: str, exit_code: bool) -> None:
    """Show the effects of a routing change: access, traffic shares, first choices, warnings.

    Without --base or --old, CONFIG is compared with its last commit (HEAD).
    """
    import orjson

    from routectl.review.effects import compare, empty_table
    from routectl.review.markdown import render_markdown
    from routectl.review.sources import table_at_ref, table_from_file

    if base is not None and old is not None:
        raise click.UsageError("give --base or --old, not both")
    new = _load_or_exit(lambda: table_from_file(config))
    if old is not None:
        before = _load_or_exit(lambda: table_from_file(old))
    else:
        before = _load_or_exit(lambda: table_at_ref(base or "HEAD", config)) or empty_table()
    result = compare(before, new)
    if fmt == "json":
        click.echo(orjson.dumps(result.to_data(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_markdown(result), nl=False)
    if exit_code and not result.is_empty():
        sys.exit(1)


def _table_for(table_path: str | None, config: str | None) -> Any:
    """--table, else --config, else generated/routing_table.json when present, else routing.yaml."""
    from routectl.review.sources import table_from_file

    if table_path is not None and config is not None:
        raise click.UsageError("give --table or --config, not both")
    source = table_path or config
    if source is None:
        default = Path(DEFAULT_TABLE_PATH)
        source = str(default) if default.exists() else "routing.yaml"
    return _load_or_exit(lambda: table_from_file(source))


def _caller_for(table: Any, handle: str) -> Any:
    from routectl.review.access import index_for

    caller = index_for(table).callers.get(handle)
    if caller is None:
        known = ", ".join(sorted(table.users)) or "none"
        raise click.BadParameter(
            f"no user {handle!r} in the table (users: {known})", param_hint="--as"
        )
    return caller


_table_options = [
    click.option(
        "--table",
        "table_path",
        type=click.Path(dir_okay=False),
        help="Compiled table [default: generated/routing_table.json when present].",
    ),
    click.option(
        "--config",
        type=click.Path(dir_okay=False),
        help="Compile this routing.yaml instead of reading a compiled table.",
    ),
]


def _with_table_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_table_options):
        f = option(f)
    return f


@click.command("explain")
@click.argument("model")
@click.option("--as", "handle", required=True, metavar="HANDLE", help="The calling user.")
@click.option("--tools", is_flag=True, help="The request carries tools.")
@click.option("--vision", is_flag=True, help="The request carries image content.")
@click.option("--prompt-tokens", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--affinity-key",
    metavar="KEY",
    help="The request's session key (its header, user or metadata value) for a collection "
    "with affinity.",
)
@_with_table_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def explain_command(
    model: str,
    handle: str,
    tools: bool,
    vision: bool,
    prompt_tokens: int,
    affinity_key: str | None,
    table_path: str | None,
    config: str | None,
    fmt: str,
) -> None:
    """Explain how MODEL would be routed for a caller, without calling any provider.

    Connections whose key env var is unset here are unavailable, as in `routectl serve`.
    """
    import os

    import orjson

    from routectl.review.access import index_for
    from routectl.review.explain import explain_model, fresh_state
    from routectl.review.explain_text import render_explanation
    from routectl.runtime.plan import RequestFacts

    table = _table_for(table_path, config)
    caller = _caller_for(table, handle)
    from routectl.runtime.affinity import key_hash

    facts = RequestFacts(
        prompt_tokens=prompt_tokens,
        needs_tools=tools,
        needs_vision=vision,
        affinity_hash=key_hash(affinity_key) if affinity_key else None,
    )
    data = explain_model(index_for(table), fresh_state(table, os.environ), caller, model, facts)
    if fmt == "json":
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_explanation(data), nl=False)


def _parse_fail(values: tuple[str, ...]) -> dict[str, float]:
    rates: dict[str, float] = {}
    for value in values:
        model, sep, rate = value.rpartition("=")
        try:
            number = float(rate)
        except ValueError:
            number = -1.0
        if not sep or not model or not 0.0 <= number <= 1.0:
            raise click.BadParameter(
                f"{value!r} is not MODEL=RATE with RATE in 0..1", param_hint="--fail"
            )
        rates[model] = number
    return rates


@click.command("simulate")
@click.argument("collection")
@click.option("--as", "handle", required=True, metavar="HANDLE", help="The calling user.")
@click.option("-n", "requests", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--fail",
    multiple=True,
    metavar="MODEL=RATE",
    help="Fail this share of the attempts on MODEL (member as written or provider/model).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--rps",
    type=click.FloatRange(min=0.001),
    default=10.0,
    show_default=True,
    help="Simulated requests per second (cooldowns run on simulated time).",
)
@click.option(
    "--real-credentials",
    is_flag=True,
    help="Treat connections whose key env var is unset here as unavailable.",
)
@click.option(
    "--affinity-keys",
    type=click.IntRange(min=1),
    help="For a collection with affinity: request i carries session key `session-(i mod N)`.",
)
@_with_table_options
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown")
def simulate_command(
    collection: str,
    handle: str,
    requests: int,
    fail: tuple[str, ...],
    seed: int,
    rps: float,
    real_credentials: bool,
    affinity_keys: int | None,
    table_path: str | None,
    config: str | None,
    fmt: str,
) -> None:
    """Route N simulated requests to COLLECTION with the runtime's strategy and fallback code."""
    import dataclasses
    import os

    import orjson

    from routectl.review.access import index_for
    from routectl.review.simulate import render_simulation, simulate
    from routectl.runtime.errors import RoutingError
    from routectl.runtime.resolve import route_for

    table = _table_for(table_path, config)
    caller = _caller_for(table, handle)
    name = f"collection/{collection}" if collection in table.collections else collection
    try:
        route = route_for(index_for(table), caller, name).route
    except RoutingError as exc:
        click.echo(f"{exc.code}: {exc.message}", err=True)
        sys.exit(1)
    rates = _parse_fail(fail)
    known = {m.model for m in route.members} | {m.model_id for m in route.members}
    unknown = sorted(set(rates) - known)
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)} not in {name} (members: {', '.join(sorted(known))})",
            param_hint="--fail",
        )
    if affinity_keys and (route.collection is None or route.collection.affinity is None):
        raise click.BadParameter(f"{name} has no affinity", param_hint="--affinity-keys")
    environ = os.environ if real_credentials else None
    result = simulate(
        table,
        caller,
        route,
        requests,
        fail=rates,
        seed=seed,
        rps=rps,
        environ=environ,
        affinity_keys=affinity_keys or 0,
    )
    if fmt == "json":
        click.echo(orjson.dumps(dataclasses.asdict(result), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_simulation(result), nl=False)


@click.command("test")
@click.argument("routes", default="routes.yaml", type=click.Path(dir_okay=False))
@_with_table_options
@click.option(
    "--real-credentials",
    is_flag=True,
    help="Treat connections whose key env var is unset here as unavailable.",
)
def test_command(
    routes: str, table_path: str | None, config: str | None, real_credentials: bool
) -> None:
    """Check the routing cases in ROUTES (expected first choice, order or error); exit 1 on a failure.

    Each case: {name, as, model, tools?, vision?, prompt_tokens?, expect: {first: MODEL} |
    {order: [MODEL...]} | {error: CODE}}. Every key env var counts as set unless --real-credentials.
    """
    import os

    from routectl.review.routetest import RouteTestError, check_case, load_cases

    table = _table_for(table_path, config)
    try:
        cases = load_cases(routes)
    except RouteTestError as exc:
        _fail_config(exc)
    environ = os.environ if real_credentials else None
    results = [check_case(table, case, environ) for case in cases]
    for r in results:
        click.echo(f"{'PASS' if r.passed else 'FAIL'}  {r.case.name}")
        if r.problem:
            click.echo(f"      {r.problem}")
    failed = sum(not r.passed for r in results)
    click.echo(f"{len(results)} case(s): {len(results) - failed} passed, {failed} failed")
    if failed:
        sys.exit(1)


def register(group: click.Group) -> None:
    """Attach this area's commands."""
    group.add_command(diff_command)
    group.add_command(explain_command)
    group.add_command(simulate_command)
    group.add_command(test_command)
