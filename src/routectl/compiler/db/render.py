"""Render seed.sql and migrations with one jinja2 Environment; each op type has its own macro.

Values become SQL text in Python (rows.Row.values_sql, literals.sql_literal), once per row; the
templates lay out the statements around that text. At 10,000 collections a migration holds
over 100,000 rows, and a jinja2 filter call per cell would dominate the whole compile.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from itertools import groupby
from typing import Any, NamedTuple

from jinja2 import Environment, PackageLoader, StrictUndefined

from routectl.compiler.db.chain import stamp_digest
from routectl.compiler.db.literals import sql_comment, sql_literal, sql_literals, sql_uuid
from routectl.compiler.db.ops import CreateOp, DeleteOp, Op, UpdateOp, UpgradeSchemaOp, macro_name
from routectl.compiler.db.rows import (
    SCHEMA_STEPS,
    SCHEMA_VERSION,
    TABLES,
    Row,
    TableSpec,
    table_rows,
)
from routectl.table import RoutingTable

__all__ = [
    "LOCK_KEY",
    "Rows",
    "environment",
    "render_migration",
    "render_seed",
    "schema_steps",
]

# pg_advisory_xact_lock key shared by the seed and every migration: "route" in ASCII
LOCK_KEY = 0x726F757465

# table name -> its rows, as rows.table_rows returns them
Rows = dict[str, tuple[Row, ...]]
_TABLE_ORDER = {spec.name: i for i, spec in enumerate(TABLES)}


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
        # templates ship inside the package: no stat() of the file on every lookup
        auto_reload=False,
    )
    env.filters["sql_literal"] = sql_literal
    env.filters["sql_comment"] = sql_comment
    env.globals["schema_version"] = SCHEMA_VERSION
    env.globals["lock_key"] = LOCK_KEY
    return env


class TableSql(NamedTuple):
    """One table's rows as SQL text for state.sql.j2: the VALUES lines and the id list lines."""

    total: int
    values: str  # "    (id, v1, v2, ...)" lines joined by ",\n"
    ids: str  # "    id,  -- natural key" lines (the last without the comma)


class ChangeSql(NamedTuple):
    """One changed column of an update, as text: `comment` is `column: old -> new`, comment-safe."""

    column: str
    comment: str
    new: str


class OpSql(NamedTuple):
    """What an op macro of ops.sql.j2 receives: the op's parts already turned into SQL text."""

    key: str  # the natural key, safe inside a `--` comment
    id: str
    columns: str = ""
    values: str = ""
    changes: tuple[ChangeSql, ...] = ()


class SchemaSql(NamedTuple):
    """What the upgrade_schema macro receives: the versions and the DDL templates in between."""

    from_version: int
    to_version: int
    steps: tuple[str, ...]


def schema_steps(after: int, upto: int) -> tuple[str, ...]:
    """The DDL templates that take a schema from version `after` to version `upto`, in order."""
    return tuple(SCHEMA_STEPS[v] for v in sorted(SCHEMA_STEPS) if after < v <= upto)


def _table_sql(rows: tuple[Row, ...]) -> TableSql:
    ids = [sql_uuid(r.id) for r in rows]
    values = ",\n".join([f"    ({i}, {r.values_sql})" for i, r in zip(ids, rows, strict=True)])
    last = len(rows) - 1
    id_lines = "\n".join(
        [
            f"    {i}{',' if n != last else ' '}  -- {sql_comment(r.key)}"
            for n, (i, r) in enumerate(zip(ids, rows, strict=True))
        ]
    )
    return TableSql(len(rows), values, id_lines)


def _tables(rows: Rows) -> list[tuple[TableSpec, TableSql]]:
    return [(spec, _table_sql(rows[spec.name])) for spec in TABLES]


def _op_sql(op: Op) -> OpSql | SchemaSql:
    if isinstance(op, UpgradeSchemaOp):
        steps = schema_steps(op.from_version, op.to_version)
        return SchemaSql(op.from_version, op.to_version, steps)
    key, row_id = sql_comment(op.key), sql_uuid(op.id)
    if isinstance(op, CreateOp):
        values = op.values_sql
        if values is None:
            values = sql_literals(v for _, v in op.values)
        return OpSql(key, row_id, ", ".join([c for c, _ in op.values]), values)
    if isinstance(op, UpdateOp):
        changes = []
        for c in op.changes:
            old, new = sql_literal(c.old), sql_literal(c.new)
            changes.append(ChangeSql(c.column, sql_comment(f"{c.column}: {old} -> {new}"), new))
        return OpSql(key, row_id, changes=tuple(changes))
    assert isinstance(op, DeleteOp)
    return OpSql(key, row_id)


def _macro(op_type: type[object]) -> Any:
    """The macro of ops.sql.j2 that renders ops of `op_type` (see ops.macro_name)."""
    macros: Any = environment().get_template("ops.sql.j2").module
    return getattr(macros, macro_name(op_type))


Run = tuple[type[object], list[OpSql | SchemaSql]]


def _runs(ops: Sequence[Op]) -> list[Run]:
    """Consecutive ops of one type, grouped: each group is one call of that type's macro."""
    return [(kind, [_op_sql(op) for op in group]) for kind, group in groupby(ops, key=type)]


def _render_run(run: Run) -> str:
    kind, views = run
    return str(_macro(kind)(views))


def render_seed(
    table: RoutingTable,
    to_hash: str,
    number: int | None,
    *,
    rows: Rows | None = None,
    schema_version: int = SCHEMA_VERSION,
) -> str:
    """seed.sql: schema + the whole state of `table`, recorded as migration `number`'s table.

    `rows` is table_rows(table, schema_version) when the caller already has it.
    """
    template = environment().get_template("seed.sql.j2")
    state = _tables(table_rows(table, schema_version) if rows is None else rows)
    return template.render(
        tables=state,
        to_hash=to_hash,
        number=number,
        schema_version=schema_version,
        schema_steps=schema_steps(1, schema_version),
    )


def render_migration(
    *,
    number: int,
    name: str,
    from_hash: str | None,
    to_hash: str,
    ops: Sequence[Op],
    resync: RoutingTable | None = None,
    resync_rows: Rows | None = None,
    expected_counts: Mapping[str, int] | None = None,
    schema_version: int = SCHEMA_VERSION,
    upgrade_from: int | None = None,
) -> str:
    """One migration file; with `resync` (or its rows), the whole state of that table instead of `ops`.

    The file records the `schema_version` it leaves the database at; a resync of a database at
    an older schema (`upgrade_from`) upgrades it first (ops carry their own UpgradeSchemaOp).
    """
    template = environment().get_template("migration.sql.j2")
    if resync_rows is None and resync is not None:
        resync_rows = table_rows(resync, schema_version)
    tables = None if resync_rows is None else _tables(resync_rows)
    text = template.render(
        number=number,
        name=name,
        from_hash=from_hash,
        to_hash=to_hash,
        initial=from_hash is None,
        count=len(ops),
        runs=_runs(ops),
        tables=tables,
        render_run=_render_run,
        schema_version=schema_version,
        schema_steps=schema_steps(1, schema_version),
        resync_steps=schema_steps(upgrade_from or schema_version, schema_version),
        expected_counts=sorted((expected_counts or {}).items(), key=lambda kv: _TABLE_ORDER[kv[0]]),
    )
    return stamp_digest(text)
