"""One access-log record -> one request_logs row, the same for the live sink, the spool and
`routectl logs load`, so a request gives the same row whichever way it reaches the database.

The record is the JSON line the runtime writes per request (runtime/envelope.py, handlers.py,
upstream.py, record.py). Message content is never in it, so it is never in a row.
"""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.usage import ROUTED_PATHS

__all__ = ["COLUMNS", "ROW_SQL", "batch_json", "is_logged", "parse_line"]

# request_logs' columns in the order rows hold them (SPEC §5; schema_v2.sql.j2)
COLUMNS = (
    "id",
    "request_id",
    "created_at",
    "caller",
    "organization",
    "requested_model",
    "resolution",
    "collection_name",
    "routing_strategy",
    "selected_model",
    "connection",
    "attempts",
    "fallback_reason",
    "status",
    "error_code",
    "latency_ms",
    "ttfb_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "stream",
    "routing_table",
    "request_data",
    "response_data",
)


def is_logged(record: dict[str, Any]) -> bool:
    """A record request_logs holds a row for: a model call (ROUTED_PATHS) with an id and status."""
    return (
        record.get("path") in ROUTED_PATHS
        and isinstance(record.get("request_id"), str)
        and isinstance(record.get("status"), int)
        and isinstance(record.get("ts"), int | float)
    )


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The record on one line of an access log (or a spool file); None for anything else: the
    runtime's other log lines, a line cut short, a record of a route that is not logged."""
    line = line.strip()
    if not line.startswith(b"{"):
        return None
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not is_logged(record):
        return None
    return record


def _text(field: str) -> str:
    return f"CASE WHEN jsonb_typeof(r->'{field}') = 'string' THEN r->>'{field}' END"


def _number(field: str, sql_type: str = "double precision") -> str:
    return f"CASE WHEN jsonb_typeof(r->'{field}') = 'number' THEN (r->>'{field}')::{sql_type} END"


# The row of a record, in SQL over the record as jsonb `r`: the gateway sends the records as they
# are (a batch is one JSON array, encoded by one orjson call; see batch_json) and PostgreSQL
# derives every column.
# Every field is read by its JSON type, so a record with an odd field gives NULL there, never an
# error that would hold back the rest of its batch.
_LATENCY = _number("latency_ms")
_PROMPT = _number("prompt_tokens", "integer")
_COMPLETION = _number("completion_tokens", "integer")
_MODEL = f"NULLIF({_text('selected_model')}, '')"
_FALLBACK = _text("fallback_reason")
_COLLECTION = _text("collection")
ROW_SQL: dict[str, str] = {
    "id": "md5(r->>'request_id')::uuid",
    "request_id": "r->>'request_id'",
    # the record's `ts` is when the answer ended; the row's time is when the request arrived
    "created_at": f"to_timestamp((r->>'ts')::double precision - coalesce({_LATENCY}, 0) / 1000)",
    "caller": _text("caller"),
    "organization": _text("organization"),
    "requested_model": _text("requested_model"),
    "resolution": _text("resolution"),
    "collection_name": _COLLECTION,
    "routing_strategy": _text("strategy"),
    "selected_model": _MODEL,
    "connection": f"NULLIF({_text('connection')}, '')",
    "attempts": (
        "CASE WHEN jsonb_typeof(r->'failed_attempts') = 'array' THEN r->'failed_attempts'"
        " ELSE '[]'::jsonb END"
        f" || CASE WHEN {_MODEL} IS NOT NULL THEN jsonb_build_array(jsonb_build_object("
        f"'model', {_MODEL}, 'connection', {_text('connection')}, 'status', (r->>'status')::int))"
        " ELSE '[]'::jsonb END"
    ),
    "fallback_reason": _FALLBACK,
    "status": "(r->>'status')::integer",
    "error_code": f"coalesce({_text('error')}, {_text('stream_error')})",
    "latency_ms": _LATENCY,
    "ttfb_ms": f"coalesce({_number('ttfb_ms')}, {_LATENCY})",
    "prompt_tokens": _PROMPT,
    "completion_tokens": _COMPLETION,
    "total_tokens": f"{_PROMPT} + {_COMPLETION}",
    "cost_usd": _number("cost", "numeric"),
    "stream": "coalesce(jsonb_typeof(r->'stream') = 'boolean' AND (r->>'stream')::boolean, false)",
    "routing_table": _text("table"),
    "request_data": (
        f"jsonb_build_object('model', {_text('requested_model')}, 'stream',"
        " coalesce(jsonb_typeof(r->'stream') = 'boolean' AND (r->>'stream')::boolean, false),"
        " 'path', r->>'path')"
    ),
    "response_data": (
        f"jsonb_build_object('_selected_model', {_MODEL}, '_latency_ms', {_LATENCY},"
        f" 'status', (r->>'status')::integer, 'prompt_tokens', {_PROMPT},"
        f" 'completion_tokens', {_COMPLETION}, 'total_tokens', {_PROMPT} + {_COMPLETION},"
        f" '_cost', {_number('cost', 'numeric')}, '_routing_table', {_text('table')})"
        f" || CASE WHEN {_COLLECTION} IS NOT NULL THEN jsonb_build_object('_collection_name',"
        f" {_COLLECTION}, '_routing_strategy', {_text('strategy')}) ELSE '{{}}'::jsonb END"
        f" || CASE WHEN {_FALLBACK} IS NOT NULL THEN jsonb_build_object('_fallback_used', true,"
        f" '_fallback_reason', {_FALLBACK}) ELSE '{{}}'::jsonb END"
    ),
}
assert tuple(ROW_SQL) == COLUMNS


def batch_json(records: list[dict[str, Any]]) -> tuple[bytes, list[dict[str, Any]]]:
    """What the database receives of a batch of records (see ROW_SQL): one JSON array, encoded in
    one call (no Python work per record), and the records it holds (`records` itself, unless one
    is not JSON: never one from the runtime, and then the rest of the batch is still written)."""
    try:
        return orjson.dumps(records), records
    except TypeError:
        pass
    kept, texts = [], []
    for record in records:
        try:
            texts.append(orjson.dumps(record))
        except TypeError:
            continue
        kept.append(record)
    return b"[" + b",".join(texts) + b"]", kept
