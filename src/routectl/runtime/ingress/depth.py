"""The nesting bound of request bodies: a body nested deeper than MAX_JSON_DEPTH is a 400 before
anything is decided (no cursor moves, no counter counts). orjson parses up to 1024 levels but
writes only 255, so a deeper body used to fail when re-encoded for the upstream: a 500 after the
strategy had already counted it."""

from __future__ import annotations

from typing import Any

from routectl.runtime.options import MAX_JSON_DEPTH
from routectl.runtime.request import bad_request

__all__ = ["check_depth"]


def check_depth(raw: bytes, body: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """400 invalid_request when `body` (parsed from `raw`) nests deeper than `limit`."""
    # a body with fewer brackets than the limit cannot nest deeper: most requests stop here
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return
    level: list[tuple[Any, int]] = [(body, 1)]
    while level:
        value, depth = level.pop()
        if depth > limit:
            raise bad_request(f"request body is nested deeper than {limit} levels")
        if isinstance(value, dict):
            level.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            level.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
