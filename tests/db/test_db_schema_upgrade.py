"""A chain written at an older schema version: compile adds the migration that upgrades it, and
migrations 0001..k still give exactly what the seed of k gives (rows, request_logs, its indexes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from routectl.compiler.db.apply import execute_file
from routectl.compiler.db.chain import read_chain, verify_migrations
from routectl.compiler.db.outputs import sql_outputs
from routectl.compiler.db.rows import SCHEMA_VERSION
from routectl.table import RoutingTable

from .conftest import snapshot
from .db_revisions import revision_tables


def _migration(out: dict[str, bytes]) -> tuple[str, bytes]:
    (path,) = (p for p in out if p != "seed.sql")
    return path, out[path]


def _v1_chain(table: RoutingTable) -> dict[str, bytes]:
    """The chain an earlier routectl (schema version 1) wrote for `table`."""
    out = sql_outputs(None, table, {}, schema_version=1)
    path, text = _migration(out)
    assert b"request_logs" not in text and b"-- schema: 1\n" in text
    return {path: text}


def test_a_schema_only_change_adds_a_migration_from_the_table_to_itself() -> None:
    table = revision_tables()[0]
    existing = _v1_chain(table)
    assert verify_migrations(existing, table) == [
        "migrations/0001_initial.sql: the chain ends at schema version 1, but this routectl "
        f"writes version {SCHEMA_VERSION}; run `routectl compile` (it adds the migration that "
        "upgrades the schema)"
    ]
    out = sql_outputs(table, table, existing)
    path, text = _migration(out)
    assert path == "migrations/0002_schema_v2.sql"
    sql = text.decode()
    assert f"-- from: {table.sha256}\n-- to: {table.sha256}\n" in sql
    assert "-- schema: 2\n" in sql
    assert "CREATE TABLE IF NOT EXISTS request_logs" in sql
    assert "property_value: '1'::jsonb -> '2'::jsonb" in sql
    existing[path] = text
    assert verify_migrations(existing, table) == []
    assert read_chain(existing).files[-1].schema == SCHEMA_VERSION
    # and then nothing more to add
    assert sorted(sql_outputs(table, table, existing)) == ["seed.sql"]


def test_a_table_change_at_the_same_time_rides_in_the_same_migration() -> None:
    base, changed = revision_tables()[:2]
    existing = _v1_chain(base)
    path, text = _migration(sql_outputs(base, changed, existing))
    assert path == "migrations/0002_schema_v2_and_1_change.sql"
    sql = text.decode()
    # the DDL comes before the row changes
    assert sql.index("CREATE TABLE IF NOT EXISTS request_logs") < sql.index(
        "-- collection ab: add member"
    )


def test_a_resync_of_an_old_chain_upgrades_the_schema_too() -> None:
    base, changed = revision_tables()[:2]
    existing = _v1_chain(base)
    path, text = _migration(sql_outputs(None, changed, existing))  # no previous table: resync
    assert path == "migrations/0002_resync.sql"
    sql = text.decode()
    assert sql.index("CREATE TABLE IF NOT EXISTS request_logs") < sql.index("resynchronisation")


def _apply(url: str, *texts: bytes) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for text in texts:
            execute_file(conn, text.decode())


@pytest.mark.db
@pytest.mark.parametrize("how", ["schema_only", "with_a_change", "resync"])
def test_an_upgraded_chain_equals_the_seed(new_database: Callable[[], str], how: str) -> None:
    base, changed = revision_tables()[:2]
    existing = _v1_chain(base)
    target = base if how == "schema_only" else changed
    previous = None if how == "resync" else base
    out = sql_outputs(previous, target, existing)
    path, text = _migration(out)
    migrated, seeded, old = new_database(), new_database(), new_database()
    _apply(migrated, *existing.values(), text)
    _apply(seeded, out["seed.sql"])
    _apply(old, *existing.values())
    by_migrations = snapshot(migrated)
    assert by_migrations == snapshot(seeded)
    assert by_migrations["routing_migrations.latest"] == [(target.sha256,)]
    assert len(by_migrations["request_logs.indexes"]) == 7  # the key, request_id and 5 more
    with psycopg.connect(old, autocommit=True) as conn:  # the comparison is not vacuous
        assert conn.execute("SELECT to_regclass('request_logs')").fetchone() == (None,)
    assert Path(path).name.startswith("0002_")
