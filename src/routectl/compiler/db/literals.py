"""SQL literals for PostgreSQL: the one place values become SQL text.

Generated files are applied with psql or psycopg without parameters, so every value is inlined;
this module is what keeps a description containing a quote (or a backslash) from breaking out.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson

__all__ = [
    "Json",
    "SqlValue",
    "sql_comment",
    "sql_literal",
    "sql_literals",
    "sql_string",
    "sql_uuid",
]


@dataclass(frozen=True, slots=True)
class Json:
    """A value stored in a jsonb column."""

    value: Any


SqlValue = None | bool | int | float | str | uuid.UUID | tuple[str, ...] | Json


def sql_string(text: str) -> str:
    """A PostgreSQL string constant that means exactly `text`, whatever standard_conforming_strings says."""
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot contain NUL characters")
    quoted = text.replace("'", "''")
    if "\\" in quoted:
        # E'' strings treat backslashes the same way under either setting of standard_conforming_strings
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"


@lru_cache(maxsize=4096)
def _decimal_text(shortest: str) -> str:
    # keyed by repr, not by the float: 0.0 and -0.0 are equal floats but different text
    return format(Decimal(shortest), "f")


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"cannot store non-finite number {value!r}")
    # repr is the shortest text that round-trips; Decimal spells it without an exponent.
    # Weights and prices repeat across thousands of rows, hence the cache.
    return _decimal_text(repr(value))


def _bool(value: bool) -> str:
    return "TRUE" if value else "FALSE"


def sql_uuid(value: uuid.UUID) -> str:
    """The SQL text of a uuid."""
    return f"'{value}'"


# Foreign keys repeat (a collection's id in each of its members, a model's in each collection
# using it); formatting a UUID is the costliest literal, so those are formatted once. Row ids are
# unique: render formats them with sql_uuid, which keeps them out of this cache.
_uuid = lru_cache(maxsize=8192)(sql_uuid)


def _array(value: tuple[object, ...]) -> str:
    if not value:
        return "'{}'::text[]"
    return "ARRAY[" + ", ".join(sql_string(str(v)) for v in value) + "]::text[]"


def _json(value: Json) -> str:
    text = orjson.dumps(value.value, option=orjson.OPT_SORT_KEYS).decode()
    return sql_string(text) + "::jsonb"


# exact type -> text; literals are rendered once per cell of every generated row, so the common
# types skip the isinstance chain below (which still decides for subclasses)
_BY_TYPE: dict[type, Callable[[Any], str]] = {
    type(None): lambda _: "NULL",
    bool: _bool,
    int: str,
    float: _number,
    str: sql_string,
    uuid.UUID: _uuid,
    tuple: _array,
    Json: _json,
}


def sql_literal(value: object) -> str:
    """The SQL text of a value: NULL, booleans, numbers, text, uuid, text[] (tuple), jsonb (Json)."""
    render = _BY_TYPE.get(type(value))
    if render is not None:
        return render(value)
    if isinstance(value, bool):
        return _bool(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, str):
        return sql_string(value)
    if isinstance(value, uuid.UUID):
        return _uuid(value)
    if isinstance(value, tuple):
        return _array(value)
    if isinstance(value, Json):
        return _json(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def sql_literals(values: Iterable[object]) -> str:
    """The SQL literals of `values`, comma separated (a VALUES tuple without its parentheses)."""
    by_type = _BY_TYPE
    return ", ".join([by_type.get(type(v), sql_literal)(v) for v in values])


# what sql_comment escapes: C0 controls, DEL, and the characters Python also treats as line breaks
_UNSAFE_IN_COMMENT = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def sql_comment(text: object) -> str:
    """Text safe inside a `--` comment: line breaks and control characters become visible escapes.

    Without this, a description holding a newline would end the comment and turn the rest of the
    line into SQL.
    """
    return _UNSAFE_IN_COMMENT.sub(_escape, str(text))
