"""Errors in OpenAI's shape: `{"error": {"message", "type", "param", "code", ...}}`. Pure.

OpenAI's `ErrorResponse` schema requires all four keys (`param` and `code` may be null), and the
SDKs expose them as `e.type`, `e.param`, `e.code`. `code` is routectl's (the SPEC's codes);
`type` is what OpenAI's API answers in the same situation: `invalid_request_error` for every
client error it does not name otherwise (a bad body, an unknown or forbidden model, a bad key,
a prompt too long), `requests` for a rate limit, `insufficient_quota` for a budget, and
`server_error` for the gateway's and its upstreams' failures. routectl's own details
(`details`, `attempts`, `required_scope`...) follow inside `error`.
"""

from __future__ import annotations

from typing import Any

import orjson

from routectl.runtime.errors import RoutingError

__all__ = ["openai_error", "openai_error_body", "openai_error_type", "openai_foreign_error"]

_TYPES_BY_CODE = {
    "rate_limited": "requests",  # OpenAI's type for a requests-per-minute limit
    "quota_exceeded": "insufficient_quota",
}


def openai_error_type(code: str | None, status: int) -> str:
    """OpenAI's `type` for an error of this code and status."""
    found = _TYPES_BY_CODE.get(code or "")
    if found is not None:
        return found
    if status == 429:
        return "requests"
    return "server_error" if status >= 500 else "invalid_request_error"


def openai_error(
    message: str,
    code: str | None,
    status: int,
    param: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `error` object: the four keys first, then the details (which never replace them)."""
    inner: dict[str, Any] = {
        "message": message,
        "type": openai_error_type(code, status),
        "param": param,
        "code": code,
    }
    for key, value in (extra or {}).items():
        inner.setdefault(key, value)
    return inner


def openai_error_body(error: RoutingError) -> dict[str, Any]:
    """A RoutingError as an `ErrorResponse`."""
    return {
        "error": openai_error(error.message, error.code, error.status, error.param, error.extra)
    }


def openai_foreign_error(status: int, body: bytes) -> bytes:
    """An error answer of an upstream of another format (Anthropic's `{"type": "error", "error":
    {"type", "message"}}`) as an `ErrorResponse`: its message kept, its type as `upstream_type`."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    if not isinstance(message, str) or not message:
        message = f"upstream answered {status}"
    extra: dict[str, Any] = {}
    if isinstance(error, dict) and isinstance(error.get("type"), str):
        extra["upstream_type"] = error["type"]
    return orjson.dumps({"error": openai_error(message, None, status, None, extra)})
