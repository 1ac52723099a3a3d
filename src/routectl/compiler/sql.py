"""PostgreSQL seed and migrations rendered from compiled tables (see docs/database.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

from routectl.compiler.db.chain import MigrationFile, parse_chain
from routectl.compiler.db.compare import compare_rows
from routectl.compiler.db.render import Rows, render_migration, render_seed
from routectl.compiler.db.rows import table_rows
from routectl.compiler.db.slug import slug_for
from routectl.table import RoutingTable, dump_table

__all__ = ["MigrationChain", "must_resync", "read_chain", "sql_outputs", "verify_migrations"]

SEED = "seed.sql"
MIGRATIONS = "migrations"


def _hash(table: RoutingTable) -> str:
    return table.sha256 or dump_table(table)[1]


def _migration_files(existing: dict[str, bytes]) -> dict[str, bytes]:
    """The files of generated/migrations/, whether keyed as `migrations/X.sql` or `X.sql`."""
    out = {}
    for path, data in existing.items():
        pure = PurePosixPath(path)
        if pure.name == SEED and len(pure.parts) == 1:
            continue
        if len(pure.parts) == 1 or pure.parts[-2] == MIGRATIONS:
            out[f"{MIGRATIONS}/{pure.name}"] = data
    return out


def must_resync(previous: RoutingTable | None, chain: list[MigrationFile]) -> bool:
    """True when the next migration cannot be a difference: the chain ends at a table that is not
    the one in generated/ (deleted or edited by hand), so it converges to the whole new state."""
    return bool(chain) and (previous is None or _hash(previous) != chain[-1].to_hash)


def _next_migration(
    previous: RoutingTable | None,
    new_rows: Rows,
    new_hash: str,
    chain: list[MigrationFile],
) -> tuple[str, str] | None:
    """(relative path, text) of the migration this compile adds, or None when nothing changed."""
    counts = {table: len(rows) for table, rows in new_rows.items()}
    if not chain:
        ops = compare_rows(table_rows(None), new_rows)
        name = "0001_initial"
        return f"{MIGRATIONS}/{name}.sql", render_migration(
            number=1, name=name, from_hash=None, to_hash=new_hash, ops=ops, expected_counts=counts
        )
    last = chain[-1]
    if last.to_hash == new_hash:
        return None
    number = max(m.number for m in chain) + 1
    if not must_resync(previous, chain):
        assert previous is not None  # must_resync is True without a previous table
        ops = compare_rows(table_rows(previous), new_rows)
        name = f"{number:04d}_{slug_for(ops)}"
        text = render_migration(
            number=number,
            name=name,
            from_hash=last.to_hash,
            to_hash=new_hash,
            ops=ops,
            expected_counts=counts,
        )
    else:
        # the table the chain ends at is not the one in generated/ (deleted or edited by hand):
        # without it there is nothing to diff against, so converge to the whole new state
        name = f"{number:04d}_resync"
        text = render_migration(
            number=number,
            name=name,
            from_hash=last.to_hash,
            to_hash=new_hash,
            ops=[],
            resync_rows=new_rows,
            expected_counts=counts,
        )
    return f"{MIGRATIONS}/{name}.sql", text


def sql_outputs(
    previous: RoutingTable | None,
    new: RoutingTable,
    existing: dict[str, bytes],
    chain: MigrationChain | None = None,
) -> dict[str, bytes]:
    """Files (paths relative to generated/) that compile writes for the database.

    `previous` is the table currently in generated/ (None when there is none), `existing` the
    current files under generated/migrations/ keyed by relative path (`chain`: the same, already
    read). Returns seed.sql and, when the table changed, the one new migration file.
    """
    new_hash = _hash(new)
    migrations = (chain or read_chain(existing)).files
    out: dict[str, bytes] = {}
    # the relational projection of `new`, with every row's SQL text: built once, shared by the
    # diff, the migration and the seed
    new_rows = table_rows(new)
    migration = _next_migration(previous, new_rows, new_hash, migrations)
    number = migrations[-1].number if migrations else None
    if migration is not None:
        path, text = migration
        out[path] = text.encode()
        number = int(PurePosixPath(path).name[:4])
    out[SEED] = render_seed(new, to_hash=new_hash, number=number, rows=new_rows).encode()
    return out


@dataclass(frozen=True)
class MigrationChain:
    """The migrations of generated/migrations/, read once: headers parsed, digests checked."""

    files: list[MigrationFile]  # the parseable ones, in order
    # what is wrong whatever the table: not migrations, edited files, gaps, links that do not join
    problems: list[str]


def read_chain(existing: dict[str, bytes]) -> MigrationChain:
    """Parse and check the migration files (keyed by path relative to generated/)."""
    chain, problems = parse_chain(_migration_files(existing))
    for index, m in enumerate(chain, start=1):
        where = m.path
        if m.number != index:
            expected = f"{index:04d}"
            problems.append(
                f"{where}: numbered {m.number:04d}, expected {expected} (migrations must be "
                "numbered 0001, 0002, ... without gaps or repeats)"
            )
        if index == 1:
            if m.from_hash is not None:
                problems.append(f"{where}: the first migration must start from the empty database")
        elif m.from_hash != chain[index - 2].to_hash:
            problems.append(
                f"{where}: starts from table {m.from_hash or 'empty'}, but the previous "
                f"migration ends at {chain[index - 2].to_hash}"
            )
    return MigrationChain(chain, problems)


def verify_migrations(
    existing: dict[str, bytes], table: RoutingTable, chain: MigrationChain | None = None
) -> list[str]:
    """Problems with the migration chain in generated/migrations/ (empty when it is sound)."""
    chain = chain or read_chain(existing)
    problems = list(chain.problems)
    if not chain.files:  # (when every file had a problem, those problems say it)
        return problems or ["migrations/ holds no migrations; run `routectl compile`"]
    last = chain.files[-1]
    expected_hash = _hash(table)
    if last.to_hash != expected_hash:
        problems.append(
            f"{last.path}: the chain ends at table {last.to_hash}, "
            f"but routing.yaml compiles to {expected_hash}; run `routectl compile`"
        )
    return problems
