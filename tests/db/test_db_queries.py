"""The seeds' own SQL and the dashboard queries of docs/database.md, on the generated schema."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path

import psycopg
import pytest

from routectl.compiler import build_table
from routectl.compiler.db.apply import execute_file
from routectl.compiler.db.outputs import sql_outputs
from routectl.compiler.db.rows import row_id
from routectl.table import RoutingTable

pytestmark = pytest.mark.db

ROOT = Path(__file__).resolve().parents[2]
QUERIES = Path(__file__).parent / "seed_queries"


@cache
def _table() -> RoutingTable:
    return build_table(ROOT / "routing.yaml")


def _query(name: str) -> bytes:
    return (QUERIES / f"{name}.sql").read_bytes()


def _doc_queries(heading: str = "Dashboard queries") -> list[str]:
    """The SQL blocks of one section of docs/database.md."""
    text = (ROOT / "docs" / "database.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)


@pytest.fixture
def conn(new_database: Callable[[], str]) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as connection:
        execute_file(connection, sql_outputs(None, _table(), {})["seed.sql"].decode())
        yield connection


def test_flash_collection_details(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(_query("flash2.5_collection_details")).fetchall()
    c = _table().collections["flash2.5"]
    assert rows == [
        (row_id("collection", "flash2.5"), "flash2.5", c.display_name, c.description, c.scope,
         c.strategy, None)
    ]  # fmt: skip


def test_flash_collection_members(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(_query("flash2.5_collection_members")).fetchall()
    members = _table().collections["flash2.5"].members
    assert len(rows) == len(members) == 5
    priorities = [int(str(r[3])) for r in rows]
    assert priorities == sorted(priorities, reverse=True)
    assert rows[0][1:] == ("google/gemini-2.5-flash", "gemini-2.5-flash", 1, Decimal("0.5"), True)
    expected = {
        (m.model_id, m.model_id.split("/", 1)[1], m.priority, Decimal(str(m.weight)), m.active)
        for m in members
    }
    assert {r[1:] for r in rows} == expected


def test_org_shared_models_details(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    rows = conn.execute(_query("org-shared-models_collection_details")).fetchall()
    assert len(rows) == 1
    (_, name, _, _, scope, strategy, org_id, created_at, updated_at) = rows[0]
    assert (name, scope, strategy) == ("org-shared-models", "organization", "least_used")
    assert org_id == row_id("organization", "acme-corp")
    assert created_at is not None and updated_at is not None


def test_org_shared_models_members_with_usage(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    # the generated request_logs (schema version 2), as `routectl serve --log-database-url` fills it
    conn.execute(
        b"INSERT INTO request_logs (id, request_id, status, request_data, response_data, created_at)"
        b" SELECT gen_random_uuid(), 'r' || n, 200, '{\"model\": \"collection/org-shared-models\"}',"
        b" jsonb_build_object('_selected_model', m), now() - age"
        b" FROM (VALUES (1, 'openai/gpt-4o', interval '0'), (2, 'openai/gpt-4o', interval '1 hour'),"
        b"  (3, 'echo/echo-1', interval '0'), (4, 'echo/echo-1', interval '2 days')) AS t (n, m, age)"
    )
    rows = conn.execute(_query("org-shared-models_members_with_usage")).fetchall()
    usage = {str(r[1]): r[7] for r in rows}
    members = _table().collections["org-shared-models"].members
    assert sorted(usage) == sorted(m.model_id for m in members)
    assert usage["openai/gpt-4o"] == 2
    assert usage["echo/echo-1"] == 1  # the two-day-old request is outside the 24 h window
    assert rows[0][1] == "openai/gpt-4o"
    assert {r[3] for r in rows} == {m.model_id.split("/")[0] for m in members}


def test_auto_free_property_and_collection(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    (value,) = conn.execute(_query("auto-free_models_property")).fetchone() or (None,)
    auto_free = _table().collections["auto-free"]
    assert value == [m.model_id for m in auto_free.members if m.active]
    assert value == ["groq/llama-3.3-70b-versatile", "echo/echo-1", "echo/echo-mini"]

    entry = conn.execute(_query("auto-free_collection_entry")).fetchall()
    assert len(entry) == 1
    cursor = conn.execute(_query("auto-free_mark_system"))
    assert cursor.rowcount == 1  # the seed already marked it; the admin command still runs


def test_dashboard_members_with_weights(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    members_query, _ = _doc_queries()
    rows = conn.execute(members_query.encode()).fetchall()
    table = _table()
    expected = [
        (
            name,
            c.strategy,
            m.model_id,
            m.handle,
            m.priority,
            Decimal(str(m.weight)),
            (Decimal(repr(m.normalized_weight)) * 100).quantize(
                Decimal("0.1"), rounding=ROUND_HALF_UP
            ),
            m.active,
        )
        for name, c in sorted(table.collections.items())
        for m in c.members
    ]
    assert rows == expected
    ab = [r for r in rows if r[0] == "ab-test"]
    assert [(r[2], r[6]) for r in ab] == [
        ("echo/echo-1", Decimal("70.0")),
        ("echo/echo-mini", Decimal("30.0")),
    ]


def test_dashboard_collections_per_organization(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    _, per_org_query = _doc_queries()
    rows = conn.execute(per_org_query.encode()).fetchall()
    assert rows == [("acme-corp", 2, 1, "org-shared-models")]
