"""SQL literals for PostgreSQL: the one place values become SQL text.

Generated files are applied with psql or psycopg without parameters, so every value is inlined;
this module is what keeps a description containing a quote (or a backslash) from breaking out.
"""

from __future__ import annotations

import math
import uuid
from decimal import Decimal

import orjson

from routectl.compiler.db.rows import Json

__all__ = ["sql_comment", "sql_literal", "sql_string"]


def sql_string(text: str) -> str:
    """A PostgreSQL string constant that means exactly `text`, whatever standard_conforming_strings says."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot contain NUL characters")
    quoted = text.replace("'", "''")
    if "\\" in quoted:
        # E'' strings treat backslashes the same way under either setting of standard_conforming_strings
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"cannot store non-finite number {value!r}")
    # repr is the shortest text that round-trips; Decimal spells it without an exponent
    return format(Decimal(repr(value)), "f")


def sql_literal(value: object) -> str:
    """The SQL text of a value: NULL, booleans, numbers, text, uuid, text[] (tuple), jsonb (Json)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, uuid.UUID):
        return f"'{value}'"
    if isinstance(value, tuple):
        if not value:
            return "'{}'::text[]"
        return "ARRAY[" + ", ".join(sql_string(str(v)) for v in value) + "]::text[]"
    if isinstance(value, Json):
        text = orjson.dumps(value.value, option=orjson.OPT_SORT_KEYS).decode()
        return sql_string(text) + "::jsonb"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def sql_comment(text: object) -> str:
    """Text safe inside a `--` comment: line breaks and control characters become visible escapes.

    Without this, a description holding a newline would end the comment and turn the rest of the
    line into SQL.
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if code < 0x20 or code == 0x7F or ch in "\x85\u2028\u2029":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)
