"""Stamping an upstream's JSON answer without decoding and re-encoding it: a prototype for phase 2
of issue 16, not used by the runtime yet (bench/bench_splice.py measures it).

Today a non-streamed answer is decoded, its `model` set to the routed id, the `_...` routing fields
added (`ClientFormat.stamp`) and the whole object encoded again. `splice_answer` produces the same
JSON from the upstream's bytes by replacing the top-level `model` value in place and appending the
fields before the closing brace: equal, once decoded, to the re-encoded answer, keys in the same
order (tests/runtime/test_splice.py checks it on a corpus of upstream answers). Where the bytes do
not make that sure, it returns None and the caller re-encodes.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

__all__ = ["splice_answer"]

_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\]]')
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_KEY = b'"model"'
_SPACE = b" \t\r\n"


def _skip_space(raw: bytes, at: int, end: int) -> int:
    while at < end and raw[at] in _SPACE:
        at += 1
    return at


def splice_answer(raw: bytes, model_id: str, fields: dict[str, Any]) -> bytes | None:
    """`raw`, a valid JSON object (the upstream's answer, already checked by the caller), with its
    top-level `model` set to `model_id` and `fields` (every key starting with `_`) added after its
    other keys; None when that cannot be done surely on the bytes.

    Falls back (None) when: any `"_` occurs in the bytes (stamping could overwrite an existing
    key of that name, which keeps its place in the re-encoded object), `"model"` occurs more than
    once or not as the object's own key with a string value, or the bytes are not one object.
    """
    if b'"_' in raw or raw.count(_KEY) != 1 or not all(k.startswith("_") for k in fields):
        return None
    end = len(raw)
    while end and raw[end - 1] in _SPACE:
        end -= 1
    begin = _skip_space(raw, 0, end)
    if end - begin < 2 or raw[begin] != 0x7B or raw[end - 1] != 0x7D:  # { ... }
        return None
    key = raw.find(_KEY)
    slashes = 0
    while raw[key - slashes - 1] == 0x5C:  # backslash: `\"model"` ends a longer string
        slashes += 1
    if slashes % 2:
        return None
    # in valid JSON an unescaped quote before `model"` opens the string "model"; it is the
    # object's own key when it sits at depth 1: count the brackets outside strings before it: count the brackets outside strings before it
    depth = 0
    for token in _TOKEN.finditer(raw, begin, key):
        first = token.group()[0]
        if first == 0x22:  # a string: its brackets do not count
            continue
        depth += 1 if first in (0x7B, 0x5B) else -1
    if depth != 1:
        return None
    colon = _skip_space(raw, key + len(_KEY), end)
    if colon >= end or raw[colon] != 0x3A:  # the string "model" as a value, not the key
        return None
    value = _STRING.match(raw, _skip_space(raw, colon + 1, end))
    if value is None:  # not a string (null, a number): let the re-encoding handle it
        return None
    start, stop = value.span()
    tail = orjson.dumps(fields)[1:-1]  # `"_a":1,"_b":2`, no braces
    close = end - 1
    inner_end = close
    while raw[inner_end - 1] in _SPACE:
        inner_end -= 1
    parts = [raw[:start], orjson.dumps(model_id), raw[stop:inner_end]]
    if tail:
        parts += [b",", tail]
    parts.append(raw[inner_end:])
    return b"".join(parts)
