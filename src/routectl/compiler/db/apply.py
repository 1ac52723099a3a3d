"""Apply generated SQL to a PostgreSQL database with psycopg: where is it, what is pending, apply it.

Each file carries its own BEGIN/COMMIT and its own hash guard, so it is sent as is (one simple
query) on an autocommit connection: exactly what `psql -v ON_ERROR_STOP=1 -f FILE` does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from routectl.compiler.db import chain as chain_policy
from routectl.compiler.db.chain import MIGRATIONS_DIR, MigrationFile
from routectl.errors import RoutectlError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "ApplyError",
    "DatabaseState",
    "apply_pending",
    "database_state",
    "execute_file",
    "pending_migrations",
    "read_chain",
]


class ApplyError(RoutectlError):
    """The database cannot be brought to the generated state (it says why)."""


@dataclass(frozen=True, slots=True)
class DatabaseState:
    """The latest routing_migrations row: where the database is."""

    number: int | None
    name: str
    kind: str
    to_hash: str


def read_chain(out_dir: Path) -> list[MigrationFile]:
    """The migrations in out_dir/migrations, in order; ApplyError if the files are unreadable."""
    folder = out_dir / MIGRATIONS_DIR
    if not folder.is_dir():
        raise ApplyError(f"{folder} does not exist; run `routectl compile` first")
    files = {f"{MIGRATIONS_DIR}/{p.name}": p.read_bytes() for p in folder.glob("*.sql")}
    # the chain policy `check` and `compile` apply: numbering without gaps, each migration
    # starting where the previous one ends, no edited file
    chain = chain_policy.read_chain(files)
    if chain.problems:
        raise ApplyError("; ".join(chain.problems))
    return chain.files


def database_state(conn: psycopg.Connection[tuple[object, ...]]) -> DatabaseState | None:
    """The latest routing_migrations row, or None for a database routectl never touched."""
    row = conn.execute("SELECT to_regclass('routing_migrations') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return None
    latest = conn.execute(
        "SELECT number, name, kind, to_hash FROM routing_migrations ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if latest is None:
        return None
    number, name, kind, to_hash = latest
    return DatabaseState(
        number=number if isinstance(number, int) else None,
        name=str(name),
        kind=str(kind),
        to_hash=str(to_hash),
    )


def pending_migrations(
    chain: list[MigrationFile], state: DatabaseState | None
) -> list[MigrationFile]:
    """The migrations still to apply, in order; ApplyError when the database is off the chain."""
    if state is None:
        return list(chain)
    n = state.number
    if n is not None and 1 <= n <= len(chain) and chain[n - 1].to_hash == state.to_hash:
        return chain[n:]
    # a hash can recur (a change reverted later): the last migration reaching it is the position
    for index in range(len(chain) - 1, -1, -1):
        if chain[index].to_hash == state.to_hash:
            return chain[index + 1 :]
    raise ApplyError(
        f"the database is at routing table {state.to_hash} ({state.name}), which no migration in "
        "generated/migrations/ produces; apply generated/seed.sql to converge it"
    )


def execute_file(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> None:
    """Run one generated file (its own transaction); on error roll back and raise ApplyError."""
    import psycopg

    try:
        conn.execute(sql.encode())
    except psycopg.Error as exc:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.execute("ROLLBACK")
        diag = exc.diag
        message = diag.message_primary or str(exc)
        hint = f" (hint: {diag.message_hint})" if diag.message_hint else ""
        raise ApplyError(f"{message}{hint}") from exc


def apply_pending(
    database_url: str, out_dir: Path, echo: Callable[[str], None] = print
) -> list[str]:
    """Apply every pending migration of out_dir/migrations in order; the names applied."""
    import psycopg

    chain = read_chain(out_dir)
    applied: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        todo = pending_migrations(chain, database_state(conn))
        if not todo:
            echo("database is up to date")
        for migration in todo:
            text = (out_dir / migration.path).read_text(encoding="utf-8")
            try:
                execute_file(conn, text)
            except ApplyError as exc:
                raise ApplyError(f"{migration.name}: {exc}") from exc
            echo(f"applied {migration.name}")
            applied.append(migration.name)
    return applied
