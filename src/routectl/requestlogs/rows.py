"""One access-log record -> one request_logs row. Pure, and the same for the live sink, the spool
and `routectl logs load`, so a request gives the same row whichever way it reaches the database.

The record is the JSON line the runtime writes per request (runtime/middleware.py, handlers.py,
upstream.py, record.py). Message content is never in it, so it is never in a row.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from routectl.runtime.usage import ROUTED_PATHS

__all__ = ["COLUMNS", "NAMESPACE", "Row", "is_logged", "parse_line", "request_row"]

# Fixed forever: a row's id is UUIDv5(request_id) under it, so every writer agrees on it.
NAMESPACE = uuid.UUID("0e7b4f5c-1a3d-5b8e-9c21-7d4e6f8a9b30")

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

# jsonb columns travel as JSON text (COPY parses them with the column's type)
Row = tuple[Any, ...]


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


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def request_row(record: dict[str, Any]) -> Row:
    """The request_logs row of a logged record (see is_logged), in COLUMNS order."""
    request_id: str = record["request_id"]
    latency = _num(record.get("latency_ms"))
    # the record's `ts` is when the answer ended; the row's time is when the request arrived
    created = datetime.fromtimestamp(record["ts"] - (latency or 0.0) / 1000, UTC)
    model = record.get("selected_model") or None
    connection = record.get("connection") or None
    status: int = record["status"]
    attempts = [a for a in record.get("failed_attempts") or () if isinstance(a, dict)]
    if model is not None:
        attempts.append({"model": model, "connection": connection, "status": status})
    prompt = _int(record.get("prompt_tokens"))
    completion = _int(record.get("completion_tokens"))
    total = prompt + completion if prompt is not None and completion is not None else None
    cost = _num(record.get("cost"))
    collection = record.get("collection")
    strategy = record.get("strategy")
    fallback = record.get("fallback_reason")
    requested = record.get("requested_model")
    stream = bool(record.get("stream"))
    request_data: dict[str, Any] = {"model": requested, "stream": stream, "path": record["path"]}
    response_data: dict[str, Any] = {
        "_selected_model": model,
        "_latency_ms": latency,
        "status": status,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "_cost": cost,
        "_routing_table": record.get("table"),
    }
    if collection:
        response_data["_collection_name"] = collection
        response_data["_routing_strategy"] = strategy
    if fallback:
        response_data["_fallback_used"] = True
        response_data["_fallback_reason"] = fallback
    return (
        uuid.uuid5(NAMESPACE, request_id),
        request_id,
        created,
        record.get("caller"),
        record.get("organization"),
        requested,
        record.get("resolution"),
        collection,
        strategy,
        model,
        connection,
        _json(attempts),
        fallback,
        status,
        record.get("error") or record.get("stream_error"),
        latency,
        _num(record.get("ttfb_ms")) if "ttfb_ms" in record else latency,
        prompt,
        completion,
        total,
        Decimal(repr(cost)) if cost is not None else None,
        stream,
        record.get("table"),
        _json(request_data),
        _json(response_data),
    )
