"""What compile writes for the database: seed.sql and the next migration (see docs/database.md)."""

from __future__ import annotations

from pathlib import PurePosixPath

from routectl.compiler.db.chain import (
    MIGRATIONS_DIR,
    SEED_FILE,
    MigrationChain,
    MigrationFile,
    must_resync,
    read_chain,
    table_hash,
)
from routectl.compiler.db.compare import compare_rows
from routectl.compiler.db.render import Rows, render_migration, render_seed
from routectl.compiler.db.rows import SCHEMA_VERSION, table_rows
from routectl.compiler.db.slug import slug_for
from routectl.table import RoutingTable

__all__ = ["sql_outputs"]


def _next_migration(
    previous: RoutingTable | None,
    new_rows: Rows,
    new_hash: str,
    chain: list[MigrationFile],
    schema_version: int,
) -> tuple[str, str] | None:
    """(relative path, text) of the migration this compile adds, or None when nothing changed
    (neither the table nor the schema version)."""
    counts = {table: len(rows) for table, rows in new_rows.items()}
    if not chain:
        ops = compare_rows(table_rows(None), new_rows)
        name = "0001_initial"
        return f"{MIGRATIONS_DIR}/{name}.sql", render_migration(
            number=1,
            name=name,
            from_hash=None,
            to_hash=new_hash,
            ops=ops,
            expected_counts=counts,
            schema_version=schema_version,
        )
    last = chain[-1]
    if last.to_hash == new_hash and last.schema >= schema_version:
        return None
    number = max(m.number for m in chain) + 1
    resync = must_resync(previous, chain)
    if resync:
        # the table the chain ends at is not the one in generated/ (deleted or edited by hand):
        # without it there is nothing to diff against, so converge to the whole new state
        ops = []
        name = f"{number:04d}_resync"
    else:
        assert previous is not None  # must_resync is True without a previous table
        # the database as the chain left it: the previous table, at the chain's schema version
        ops = compare_rows(table_rows(previous, last.schema), new_rows)
        name = f"{number:04d}_{slug_for(ops)}"
    text = render_migration(
        number=number,
        name=name,
        from_hash=last.to_hash,
        to_hash=new_hash,
        ops=ops,
        resync_rows=new_rows if resync else None,
        expected_counts=counts,
        schema_version=schema_version,
        upgrade_from=last.schema,
    )
    return f"{MIGRATIONS_DIR}/{name}.sql", text


def sql_outputs(
    previous: RoutingTable | None,
    new: RoutingTable,
    existing: dict[str, bytes],
    chain: MigrationChain | None = None,
    *,
    schema_version: int = SCHEMA_VERSION,
) -> dict[str, bytes]:
    """Files (paths relative to generated/) that compile writes for the database.

    `previous` is the table currently in generated/ (None when there is none), `existing` the
    current files under generated/migrations/ keyed by relative path (`chain`: the same, already
    read). Returns seed.sql and, when the table or the schema version changed, the one new
    migration file. `schema_version` is the one to write (tests write older chains with it).
    """
    new_hash = table_hash(new)
    migrations = (chain or read_chain(existing)).files
    out: dict[str, bytes] = {}
    # the relational projection of `new`, with every row's SQL text: built once, shared by the
    # diff, the migration and the seed
    new_rows = table_rows(new, schema_version)
    migration = _next_migration(previous, new_rows, new_hash, migrations, schema_version)
    number = migrations[-1].number if migrations else None
    if migration is not None:
        path, text = migration
        out[path] = text.encode()
        number = int(PurePosixPath(path).name[:4])
    out[SEED_FILE] = render_seed(
        new, to_hash=new_hash, number=number, rows=new_rows, schema_version=schema_version
    ).encode()
    return out
