"""On a real PostgreSQL: migrations 0001..k give exactly the rows of the seed of revision k."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from routectl.compiler.db.apply import ApplyError, execute_file

from .conftest import GENERATED_TABLES, snapshot
from .db_revisions import REVISION_NAMES, compile_history


def _run(url: str, *sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for text in sql:
            execute_file(conn, text)


def _full(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every routectl table, timestamps and routing_migrations included."""
    out = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for table in (*GENERATED_TABLES, "routing_migrations"):
            out[table] = conn.execute(f"SELECT * FROM {table} ORDER BY id".encode()).fetchall()
    return out


def test_the_history_covers_at_least_eight_revisions() -> None:
    steps = compile_history()
    assert len(steps) >= 8
    assert len({s.table.sha256 for s in steps}) == len(steps), "every revision changes the table"
    # each compile added exactly the next number
    assert [s.migration_name[:4] for s in steps] == [f"{i:04d}" for i in range(1, len(steps) + 1)]


@pytest.mark.db
@pytest.mark.parametrize("k", range(len(REVISION_NAMES)), ids=REVISION_NAMES)
def test_migrations_up_to_k_equal_the_seed_of_k(new_database: Callable[[], str], k: int) -> None:
    steps = compile_history()
    migrated, seeded = new_database(), new_database()
    _run(migrated, *(s.migration for s in steps[: k + 1]))
    _run(seeded, steps[k].seed)

    by_migrations, by_seed = snapshot(migrated), snapshot(seeded)
    assert by_migrations == by_seed
    assert by_seed["routing_migrations.latest"] == [(steps[k].table.sha256,)]
    # the comparison is not vacuous: the revision's collections are all there
    collections = [str(row[1]) for row in by_seed["model_collections"][1:]]
    assert sorted(collections) == sorted(steps[k].table.collections)


@pytest.mark.db
@pytest.mark.parametrize("k", range(len(REVISION_NAMES)), ids=REVISION_NAMES)
def test_seed_twice_changes_nothing_and_the_next_migration_follows(
    new_database: Callable[[], str], k: int
) -> None:
    steps = compile_history()
    url = new_database()
    _run(url, steps[k].seed)
    once = _full(url)
    _run(url, steps[k].seed)
    assert _full(url) == once  # timestamps and routing_migrations included
    assert len(once["routing_migrations"]) == 1

    if k + 1 < len(steps):
        _run(url, steps[k + 1].migration)
        expected = new_database()
        _run(expected, steps[k + 1].seed)
        assert snapshot(url) == snapshot(expected)


@pytest.mark.db
def test_a_later_seed_converges_a_migrated_database(new_database: Callable[[], str]) -> None:
    steps = compile_history()
    url, expected = new_database(), new_database()
    _run(url, *(s.migration for s in steps[:3]))
    _run(url, steps[-1].seed)  # jumps over every change in between, deletions included
    _run(expected, steps[-1].seed)
    assert snapshot(url) == snapshot(expected)


@pytest.mark.db
def test_a_migration_at_the_wrong_hash_fails_clearly_and_changes_nothing(
    new_database: Callable[[], str],
) -> None:
    steps = compile_history()
    url = new_database()
    _run(url, *(s.migration for s in steps[:3]))
    before = _full(url)

    with pytest.raises(ApplyError) as info:
        _run(url, steps[4].migration)  # skips migration 4
    message = str(info.value)
    assert steps[4].migration_name in message
    assert f"expects the database at routing table {steps[3].table.sha256}" in message
    assert f"but it is at {steps[2].table.sha256}" in message
    assert "routectl db apply" in message  # the hint says what to do
    assert _full(url) == before

    # the session is usable afterwards and the right migration still applies
    _run(url, steps[3].migration)
    assert snapshot(url)["routing_migrations.latest"] == [(steps[3].table.sha256,)]


@pytest.mark.db
def test_the_initial_migration_refuses_a_database_that_is_not_empty(
    new_database: Callable[[], str],
) -> None:
    steps = compile_history()
    url = new_database()
    _run(url, steps[2].seed)
    before = _full(url)
    with pytest.raises(ApplyError, match="but it is at " + steps[2].table.sha256):
        _run(url, steps[0].migration)
    assert _full(url) == before


@pytest.mark.db
def test_a_migration_on_an_empty_database_names_the_empty_state(
    new_database: Callable[[], str],
) -> None:
    steps = compile_history()
    url = new_database()
    with pytest.raises(ApplyError, match=r"but it is at empty \(no routing_migrations rows\)"):
        _run(url, steps[1].migration)
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('routing_migrations')").fetchone() == (None,)
