"""Render seed.sql and migrations with one jinja2 Environment; each op type has its own macro."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from routectl.compiler.db.literals import sql_comment, sql_literal
from routectl.compiler.db.ops import Op, macro_name
from routectl.compiler.db.rows import SCHEMA_VERSION, TABLES, Row, TableSpec, table_rows
from routectl.table import RoutingTable

__all__ = ["LOCK_KEY", "environment", "render_migration", "render_seed"]

# pg_advisory_xact_lock key shared by the seed and every migration: "route" in ASCII
LOCK_KEY = 0x726F757465


@cache
def environment() -> Environment:
    """The one Environment: strict about undefined names, SQL literals via the sql_literal filter."""
    env = Environment(
        loader=PackageLoader("routectl.compiler.db", "templates"),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["sql_literal"] = sql_literal
    env.filters["sql_comment"] = sql_comment
    env.globals["schema_version"] = SCHEMA_VERSION
    env.globals["lock_key"] = LOCK_KEY
    return env


def _render_op(macro: str, op: Op) -> str:
    macros: Any = environment().get_template("ops.sql.j2").module
    return str(getattr(macros, macro)(op))


def _tables(rows: dict[str, tuple[Row, ...]]) -> list[tuple[TableSpec, tuple[Row, ...]]]:
    return [(spec, rows[spec.name]) for spec in TABLES]


def render_seed(table: RoutingTable, to_hash: str, number: int | None) -> str:
    """seed.sql: schema + the whole state of `table`, recorded as migration `number`'s table."""
    template = environment().get_template("seed.sql.j2")
    return template.render(tables=_tables(table_rows(table)), to_hash=to_hash, number=number)


def render_migration(
    *,
    number: int,
    name: str,
    from_hash: str | None,
    to_hash: str,
    ops: Sequence[Op],
    resync: RoutingTable | None = None,
) -> str:
    """One migration file; with `resync`, the whole state of that table instead of `ops`."""
    template = environment().get_template("migration.sql.j2")
    return template.render(
        number=number,
        name=name,
        from_hash=from_hash,
        to_hash=to_hash,
        initial=from_hash is None,
        ops=[(macro_name(type(op)), op) for op in ops],
        tables=None if resync is None else _tables(table_rows(resync)),
        render_op=_render_op,
    )
