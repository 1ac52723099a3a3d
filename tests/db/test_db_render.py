"""Rendered SQL (syrupy .sql snapshots), sql_outputs as compile calls it, and verify_migrations."""

from __future__ import annotations

import dataclasses

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from routectl.compiler.db.chain import verify_migrations
from routectl.compiler.db.ops import OP_TYPES, macro_name
from routectl.compiler.db.outputs import sql_outputs
from routectl.compiler.db.render import environment

from .db_revisions import REVISION_NAMES, compile_history, revision_tables


class SqlSnapshotExtension(SingleFileSnapshotExtension):
    """One readable .sql file per snapshot."""

    _write_mode = WriteMode.TEXT
    file_extension = "sql"


@pytest.fixture
def sql_snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(SqlSnapshotExtension)


@pytest.mark.parametrize("k", range(len(REVISION_NAMES)), ids=REVISION_NAMES)
def test_migration_sql(sql_snapshot: SnapshotAssertion, k: int) -> None:
    assert compile_history()[k].migration == sql_snapshot


@pytest.mark.parametrize("k", [0, len(REVISION_NAMES) - 1], ids=["first", "last"])
def test_seed_sql(sql_snapshot: SnapshotAssertion, k: int) -> None:
    assert compile_history()[k].seed == sql_snapshot


def _history_files(upto: int) -> dict[str, bytes]:
    steps = compile_history()
    return {f"migrations/{s.migration_name}.sql": s.migration.encode() for s in steps[: upto + 1]}


def test_every_op_type_has_its_macro() -> None:
    macros = environment().get_template("ops.sql.j2").module
    for create, update, delete in OP_TYPES.values():
        for op_type in (create, update, delete):
            if op_type is not None:
                assert callable(getattr(macros, macro_name(op_type))), op_type.__name__
    assert macro_name(OP_TYPES["model_collection_members"][0]) == "create_member"


def test_first_compile_writes_the_initial_migration_and_the_seed() -> None:
    table = revision_tables()[0]
    out = sql_outputs(None, table, {})
    assert sorted(out) == ["migrations/0001_initial.sql", "seed.sql"]
    migration = out["migrations/0001_initial.sql"].decode()
    assert "-- from: empty\n" in migration
    assert f"-- to: {table.sha256}\n" in migration
    assert "CREATE TABLE IF NOT EXISTS model_collections" in migration
    seed = out["seed.sql"].decode()
    assert f"-- table: {table.sha256}\n" in seed
    assert "-- migration: 0001\n" in seed


def test_compile_without_change_writes_the_same_seed_and_no_migration() -> None:
    steps = compile_history()
    k = 4
    out = sql_outputs(steps[k].table, steps[k].table, _history_files(k))
    assert list(out) == ["seed.sql"]
    assert out["seed.sql"].decode() == steps[k].seed


def test_output_is_deterministic() -> None:
    tables = revision_tables()
    first = sql_outputs(tables[2], tables[3], _history_files(2))
    again = sql_outputs(tables[2], dataclasses.replace(tables[3]), _history_files(2))
    assert first == again


def test_a_table_without_migrations_starts_the_chain_from_empty() -> None:
    # generated/routing_table.json exists, generated/migrations/ does not (older checkout)
    tables = revision_tables()
    out = sql_outputs(tables[0], tables[1], {})
    assert "migrations/0001_initial.sql" in out
    assert "-- from: empty\n" in out["migrations/0001_initial.sql"].decode()


def test_a_lost_previous_table_gives_a_resync_migration() -> None:
    tables = revision_tables()
    out = sql_outputs(None, tables[5], _history_files(2))
    (path,) = (p for p in out if p != "seed.sql")
    assert path == "migrations/0004_resync.sql"
    text = out[path].decode()
    assert f"-- from: {tables[2].sha256}\n" in text
    assert "ON CONFLICT (id) DO UPDATE" in text


def test_secrets_never_appear_only_env_var_names() -> None:
    seed = compile_history()[0].seed
    assert "ACME_OPENAI_API_KEY" in seed
    # key digests are not stored in the database at all
    assert "sha256:1111" not in seed


def test_sound_chain_has_no_problems() -> None:
    steps = compile_history()
    assert verify_migrations(_history_files(len(steps) - 1), steps[-1].table) == []


def test_chain_problems_are_named() -> None:
    steps = compile_history()
    files = _history_files(5)
    table = steps[5].table

    gap = dict(files)
    del gap[f"migrations/{steps[2].migration_name}.sql"]
    problems = verify_migrations(gap, table)
    assert any("expected 0003" in p for p in problems)
    assert any("but the previous migration ends at" in p for p in problems)

    assert any("routing.yaml compiles to" in p for p in verify_migrations(files, steps[6].table))

    renamed = dict(files)
    renamed["migrations/7_bad name.sql"] = b"-- nothing"
    assert any("not a migration file name" in p for p in verify_migrations(renamed, table))

    headless = dict(files)
    headless["migrations/0006_x.sql"] = b"BEGIN; COMMIT;\n"
    assert any("header has no" in p for p in verify_migrations(headless, table))

    first = {k: v for k, v in files.items() if not k.startswith("migrations/0001")}
    assert any("the first migration must start" in p for p in verify_migrations(first, table))

    assert verify_migrations({}, table) == [
        "migrations/ holds no migrations; run `routectl compile`"
    ]
