"""sql_literal and sql_comment: the text they produce, and what PostgreSQL reads back from it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import psycopg
import pytest

from routectl.compiler.db.literals import sql_comment, sql_literal
from routectl.compiler.db.rows import Json

TRICKY = [
    "plain",
    "",
    "O'Brien",
    "''",
    "back\\slash",
    "\\'; DROP TABLE users; --",
    "line\nbreak\r\ttab",
    "unicode \u00e9 \u2603 \U0001f600",
    "$routectl$ dollar $$",
]


def test_literal_text() -> None:
    assert sql_literal(None) == "NULL"
    assert sql_literal(True) == "TRUE"
    assert sql_literal(False) == "FALSE"
    assert sql_literal(7) == "7"
    assert sql_literal(0.1) == "0.1"
    assert sql_literal(1e-05) == "0.00001"
    assert sql_literal(1.0) == "1.0"
    assert sql_literal("it's") == "'it''s'"
    assert sql_literal("a\\b") == "E'a\\\\b'"
    assert sql_literal(()) == "'{}'::text[]"
    assert sql_literal(("a", "b'c")) == "ARRAY['a', 'b''c']::text[]"
    assert sql_literal(Json({"b": 1, "a": [1, "x"]})) == """'{"a":[1,"x"],"b":1}'::jsonb"""
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert sql_literal(u) == "'12345678-1234-5678-1234-567812345678'"


def test_literal_refuses_what_postgres_cannot_store() -> None:
    with pytest.raises(ValueError, match="NUL"):
        sql_literal("a\x00b")
    with pytest.raises(ValueError, match="non-finite"):
        sql_literal(float("nan"))
    with pytest.raises(TypeError):
        sql_literal(object())


def test_comment_cannot_end_the_line() -> None:
    text = sql_comment("a\nDROP TABLE x;\r\u2028b")
    assert "\n" not in text and "\r" not in text and "\u2028" not in text
    assert text == "a\\x0aDROP TABLE x;\\x0d\\u2028b"


@pytest.mark.db
@pytest.mark.parametrize("conforming", ["on", "off"])
def test_postgres_reads_back_exactly_the_value(
    new_database: Callable[[], str], conforming: str
) -> None:
    url = new_database()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET standard_conforming_strings = {conforming}".encode())
        conn.execute("SET escape_string_warning = off")
        for text in TRICKY:
            row = conn.execute(f"SELECT {sql_literal(text)}".encode()).fetchone()
            assert row == (text,)
        arr = ("a'b", "c\\d", "")
        assert conn.execute(f"SELECT {sql_literal(arr)}".encode()).fetchone() == (list(arr),)
        doc = {"note": 'Ann\'s "A/B" C:\\temp', "n": [1, 2.5, None, True]}
        assert conn.execute(f"SELECT {sql_literal(Json(doc))}".encode()).fetchone() == (doc,)
        for number in (0.0, 0.001, 1e-05, 0.3333333333333333, 2.5, 123456.789):
            (value,) = conn.execute(f"SELECT {sql_literal(number)}".encode()).fetchone() or (None,)
            assert float(str(value)) == number
