"""`routectl db apply` / `routectl db status`, and the documented psql commands, on PostgreSQL."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from routectl.cli import main
from routectl.compiler.db.apply import (
    ApplyError,
    DatabaseState,
    execute_file,
    pending_migrations,
)
from routectl.compiler.db.chain import MigrationFile, stamp_digest
from routectl.compiler.db.outputs import sql_outputs

from .conftest import snapshot
from .db_revisions import compile_history, revision_tables


def _write_generated(out: Path, upto: int) -> None:
    steps = compile_history()
    (out / "migrations").mkdir(parents=True)
    for step in steps[: upto + 1]:
        (out / "migrations" / f"{step.migration_name}.sql").write_text(step.migration)
    (out / "seed.sql").write_text(steps[upto].seed)


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def _seeded(new_database: Callable[[], str], k: int) -> str:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        execute_file(conn, compile_history()[k].seed)
    return url


@pytest.mark.db
def test_apply_brings_an_empty_database_to_the_seed(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    steps = compile_history()
    last = len(steps) - 1
    _write_generated(tmp_path, last)
    url = new_database()

    code, output = _cli("db", "status", "--database-url", url, "--out", str(tmp_path))
    assert code == 0, output
    assert "database: empty" in output
    assert f"{len(steps)} pending:" in output

    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 0, output
    assert output.splitlines() == [f"applied {s.migration_name}" for s in steps]
    assert snapshot(url) == snapshot(_seeded(new_database, last))

    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert (code, output) == (0, "database is up to date\n")
    code, output = _cli("db", "status", "--database-url", url, "--out", str(tmp_path))
    assert output.endswith("up to date\n")
    assert f"database: routing table {steps[last].table.sha256}" in output


@pytest.mark.db
def test_apply_follows_a_seeded_database(new_database: Callable[[], str], tmp_path: Path) -> None:
    steps = compile_history()
    _write_generated(tmp_path, 9)
    url = _seeded(new_database, 5)
    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 0, output
    assert output.splitlines() == [f"applied {s.migration_name}" for s in steps[6:10]]
    assert snapshot(url) == snapshot(_seeded(new_database, 9))


@pytest.mark.db
def test_apply_refuses_a_database_off_the_chain(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    steps = compile_history()
    _write_generated(tmp_path, 3)
    url = _seeded(new_database, 8)  # a table newer than any migration in tmp_path
    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 1
    assert f"the database is at routing table {steps[8].table.sha256}" in output
    assert "seed.sql" in output


@pytest.mark.db
def test_a_failing_migration_stops_the_run_and_keeps_the_earlier_ones(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    steps = compile_history()
    _write_generated(tmp_path, 6)
    broken = tmp_path / "migrations" / f"{steps[5].migration_name}.sql"
    # a migration that fails on the database (re-stamped, so it is not refused as edited)
    failing = broken.read_text().replace("COMMIT;", "SELECT 1/0;\nCOMMIT;")
    broken.write_text(stamp_digest(failing))
    url = new_database()
    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 1
    assert f"{steps[5].migration_name}: division by zero" in output
    assert f"applied {steps[4].migration_name}" in output
    # migration 6 rolled back as a whole: the database is exactly at revision 5's seed
    assert snapshot(url) == snapshot(_seeded(new_database, 4))


@pytest.mark.db
def test_apply_refuses_an_edited_migration_before_running_anything(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    steps = compile_history()
    _write_generated(tmp_path, 3)
    edited = tmp_path / "migrations" / f"{steps[2].migration_name}.sql"
    edited.write_text(edited.read_text().replace("COMMIT;", "DELETE FROM organizations;\nCOMMIT;"))
    url = new_database()
    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 1
    assert f"{steps[2].migration_name}.sql: edited after it was generated" in output
    with psycopg.connect(url) as conn:  # nothing ran, not even the untouched 0001
        assert conn.execute("SELECT to_regclass('routing_migrations')").fetchone() == (None,)


@pytest.mark.db
def test_apply_refuses_a_chain_with_a_gap_before_running_anything(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    steps = compile_history()
    _write_generated(tmp_path, 3)
    # 0003 missing: 0004 no longer starts where 0002 ends, and the numbering has a gap
    (tmp_path / "migrations" / f"{steps[2].migration_name}.sql").unlink()
    url = new_database()
    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 1
    assert "expected 0003" in output and "but the previous migration ends at" in output
    with psycopg.connect(url) as conn:  # nothing ran
        assert conn.execute("SELECT to_regclass('routing_migrations')").fetchone() == (None,)


@pytest.mark.db
def test_a_migration_on_a_drifted_database_fails_and_changes_nothing(
    new_database: Callable[[], str],
) -> None:
    steps = compile_history()
    url = _seeded(new_database, 1)  # at revision 1's table, as routing_migrations says
    with psycopg.connect(url, autocommit=True) as conn:  # ...but someone removed a member by hand
        deleted = conn.execute(
            "DELETE FROM model_collection_members m USING model_collections c, model_categories k"
            " WHERE m.collection_id = c.id AND m.model_category_id = k.id"
            " AND c.collection_name = 'ab' AND k.category_display_id = 'echo/echo-1'"
        ).rowcount
    assert deleted == 1
    before = snapshot(url)
    assert "UPDATE model_collection_members" in steps[2].migration  # it changes that member
    with psycopg.connect(url, autocommit=True) as conn, pytest.raises(ApplyError) as info:
        execute_file(conn, steps[2].migration)
    assert "table model_collection_members holds" in str(info.value)
    assert "apply generated/seed.sql to converge" in str(info.value)
    assert snapshot(url) == before


@pytest.mark.db
def test_apply_converges_through_a_resync_migration(
    new_database: Callable[[], str], tmp_path: Path
) -> None:
    tables = revision_tables()
    _write_generated(tmp_path, 2)
    existing = {f"migrations/{p.name}": p.read_bytes() for p in (tmp_path / "migrations").iterdir()}
    out = sql_outputs(None, tables[7], existing)  # routing_table.json was lost
    for rel, data in out.items():
        (tmp_path / rel).write_bytes(data)
    url = new_database()
    code, output = _cli("db", "apply", "--database-url", url, "--out", str(tmp_path))
    assert code == 0, output
    assert output.splitlines()[-1] == "applied 0004_resync"
    assert snapshot(url) == snapshot(_seeded(new_database, 7))


def _psql(psql: Path, url: str, path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(psql), "-X", "-q", "-v", "ON_ERROR_STOP=1", *extra, "-f", str(path), "-d", url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.db
@pytest.mark.parametrize("single_transaction", [False, True], ids=["plain", "dash-1"])
def test_the_documented_psql_commands(
    new_database: Callable[[], str], tmp_path: Path, psql_path: Path, single_transaction: bool
) -> None:
    steps = compile_history()
    _write_generated(tmp_path, 5)
    extra = ("-1",) if single_transaction else ()
    url = new_database()
    for step in steps[:6]:
        done = _psql(psql_path, url, tmp_path / "migrations" / f"{step.migration_name}.sql", *extra)
        assert done.returncode == 0, done.stderr
    seeded = new_database()
    done = _psql(psql_path, seeded, tmp_path / "seed.sql", *extra)
    assert done.returncode == 0, done.stderr
    assert snapshot(url) == snapshot(seeded)

    # the wrong migration: psql stops with the guard's message and the database is unchanged
    before = snapshot(url)
    done = _psql(psql_path, url, tmp_path / "migrations" / f"{steps[3].migration_name}.sql", *extra)
    assert done.returncode == 3
    assert f"expects the database at routing table {steps[2].table.sha256}" in done.stderr
    assert f"but it is at {steps[5].table.sha256}" in done.stderr
    assert snapshot(url) == before


def _chain(*hashes: str) -> list[MigrationFile]:
    links = [None, *hashes]
    return [
        MigrationFile(i, f"{i:04d}_x", f"migrations/{i:04d}_x.sql", links[i - 1], links[i])  # type: ignore[arg-type]
        for i in range(1, len(links))
    ]


def test_pending_migrations_from_where_the_database_is() -> None:
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    chain = _chain(a, b, a, c)  # the third migration reverts the second
    assert pending_migrations(chain, None) == chain
    assert pending_migrations(chain, DatabaseState(2, "0002_x", "migration", b)) == chain[2:]
    # a seed of revision 3 records number 3: it is at the revert, not at the first `a`
    assert pending_migrations(chain, DatabaseState(3, "seed", "seed", a)) == chain[3:]
    # no usable number: the last migration reaching the hash decides
    assert pending_migrations(chain, DatabaseState(None, "seed", "seed", a)) == chain[3:]
    assert pending_migrations(chain, DatabaseState(4, "0004_x", "migration", c)) == []
    with pytest.raises(ApplyError, match="which no migration"):
        pending_migrations(chain, DatabaseState(9, "seed", "seed", "d" * 64))
