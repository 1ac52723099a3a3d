"""compare(old | None, new) -> ops: set algebra on natural keys, table by table.

Order matters for foreign keys: inserts and updates walk the tables parents-first (a collection
can point at an organization inserted just before), then deletes walk them children-first (an
organization goes only after every row that pointed at it was updated or deleted).
"""

from __future__ import annotations

from routectl.compiler.db.literals import Json, sql_literal
from routectl.compiler.db.ops import OP_TYPES, Change, DeleteOp, Op, UpgradeSchemaOp
from routectl.compiler.db.rows import SCHEMA_PROPERTY, TABLES, Row, table_rows
from routectl.table import RoutingTable

__all__ = ["compare", "compare_rows"]


def compare(old: RoutingTable | None, new: RoutingTable) -> list[Op]:
    """The operations that turn the database of `old` (None: empty) into the database of `new`."""
    return compare_rows(table_rows(old), table_rows(new))


def _changes(old: Row, new: Row) -> tuple[Change, ...]:
    # compare the SQL text, not Python values: 1 and 1.0 are equal in Python but not in the file.
    # A list of literals parses back one way only, so equal row texts mean no column changed:
    # most rows are unchanged, and they cost one string comparison.
    if old.values_sql == new.values_sql:
        return ()
    return tuple(
        Change(column, old_value, new_value)
        for (column, old_value), (_, new_value) in zip(old.values, new.values, strict=True)
        if sql_literal(old_value) != sql_literal(new_value)
    )


def _schema_version(rows: dict[str, tuple[Row, ...]]) -> int | None:
    """The `routing.schema_version` the rows are at (None: the empty database)."""
    for row in rows.get("system_properties", ()):
        if row.key == SCHEMA_PROPERTY:
            value = row.get("property_value")
            assert isinstance(value, Json) and isinstance(value.value, int)
            return value.value
    return None


def compare_rows(old: dict[str, tuple[Row, ...]], new: dict[str, tuple[Row, ...]]) -> list[Op]:
    """Ops between two relational projections (see rows.table_rows).

    When the old rows are at an older schema version, the schema upgrade comes first: the rows
    that follow may need what it creates. (The empty database gets the whole schema from the
    initial migration instead.)
    """
    upserts: list[Op] = []
    old_schema, new_schema = _schema_version(old), _schema_version(new)
    if old_schema is not None and new_schema is not None and old_schema < new_schema:
        upserts.append(UpgradeSchemaOp(old_schema, new_schema))
    deletes_by_table: list[list[DeleteOp]] = []
    for spec in TABLES:
        create, update, delete = OP_TYPES[spec.name]
        old_rows = {r.key: r for r in old[spec.name]}
        new_rows = {r.key: r for r in new[spec.name]}
        for row in new[spec.name]:
            before = old_rows.get(row.key)
            if before is None:
                upserts.append(
                    create(key=row.key, id=row.id, values=row.values, values_sql=row.values_sql)
                )
                continue
            changes = _changes(before, row)
            if changes:
                if update is None:
                    raise AssertionError(f"{spec.name} rows have no updatable columns")
                upserts.append(update(key=row.key, id=row.id, changes=changes))
        deletes_by_table.append(
            [delete(key=r.key, id=r.id) for r in old[spec.name] if r.key not in new_rows]
        )
    deletes: list[Op] = [op for table_ops in reversed(deletes_by_table) for op in table_ops]
    return upserts + deletes
