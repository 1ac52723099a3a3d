"""The repository's own generated/seed.sql and generated/migrations/*.sql on a real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from routectl.cli import main
from routectl.compiler.db.apply import execute_file
from routectl.compiler.db.chain import verify_migrations
from routectl.table import load_table

from .conftest import snapshot

GENERATED = Path(__file__).resolve().parents[2] / "generated"


def _migrations() -> list[Path]:
    files = sorted((GENERATED / "migrations").glob("*.sql"))
    # `routectl compile` writes these; their absence is a failure, not a reason to skip
    assert (GENERATED / "seed.sql").is_file(), "generated/seed.sql is missing: run routectl compile"
    assert files, "generated/migrations/ is empty: run routectl compile"
    return files


def test_repo_chain_is_sound() -> None:
    files = {f"migrations/{p.name}": p.read_bytes() for p in _migrations()}
    assert verify_migrations(files, load_table(GENERATED / "routing_table.json")) == []


@pytest.mark.db
def test_repo_seed_and_migrations_give_the_same_database(new_database: Callable[[], str]) -> None:
    _migrations()
    seeded, migrated = new_database(), new_database()
    with psycopg.connect(seeded, autocommit=True) as conn:
        execute_file(conn, (GENERATED / "seed.sql").read_text(encoding="utf-8"))
        before = snapshot(seeded)
        execute_file(conn, (GENERATED / "seed.sql").read_text(encoding="utf-8"))
    assert snapshot(seeded) == before

    result = CliRunner().invoke(
        main, ["db", "apply", "--database-url", migrated, "--out", str(GENERATED)]
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("applied ") == len(_migrations())

    assert snapshot(migrated) == before
    table_hash = load_table(GENERATED / "routing_table.json").sha256
    assert before["routing_migrations.latest"] == [(table_hash,)]
    assert len(before["model_collections"]) - 1 == len(
        load_table(GENERATED / "routing_table.json").collections
    )
