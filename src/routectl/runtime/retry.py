"""Retry signals: whether a client should try an error answer again (`x-should-retry`), and when
(`Retry-After`). Pure.

The official SDKs (openai, anthropic, and those generated like them) obey `x-should-retry` when
it is present, and otherwise retry 408, 409, 429 and every 5xx twice with backoff. routectl knows
better than their default: a prompt that fits no context window, credentials that are not set or
a collection the caller may use no member of will fail the same way every time, and when every
upstream attempt failed routectl has already retried (up to `max_attempts` candidates), so a
client retry would only multiply the load on a failing upstream. When the end of a wait is known
(a cooldown, a rate limit) it is sent as `Retry-After` in whole seconds.
"""

from __future__ import annotations

import math

from routectl.runtime.errors import RoutingError

__all__ = ["SHOULD_RETRY", "retry_after_value", "retry_headers", "status_retries"]

SHOULD_RETRY = "x-should-retry"

# routectl's own codes whose retry answer does not follow from the status alone
_BY_CODE: dict[str, bool] = {
    "rate_limited": True,  # the limit's window ends (Retry-After says when)
    "quota_exceeded": False,  # a budget: its period ends hours away, a loop cannot wait for it
    "too_many_connections": True,
    "request_timeout": True,
    "internal_error": True,  # a bug, but possibly a passing one (the session was not open yet)
    "upstream_error": False,  # routectl already retried over its candidates
    "upstream_auth_error": False,  # the connection's key is wrong until someone changes it
    # the 503s are decided where they are raised (runtime/refusals.py): true only with a wait
    "collection_no_models": False,
    "model_unavailable": False,
}


def status_retries(status: int) -> bool:
    """The SDKs' own rule for a status with no other information: 408, 409, 429 and 5xx."""
    return status in (408, 409, 429) or status >= 500


def retry_headers(error: RoutingError) -> dict[str, str]:
    """The error's headers with `x-should-retry` set (kept when the error already says)."""
    headers = error.headers
    if SHOULD_RETRY in headers:
        return headers
    retry = _BY_CODE.get(error.code)
    if retry is None:
        retry = status_retries(error.status)
    return {**headers, SHOULD_RETRY: "true" if retry else "false"}


def retry_after_value(seconds: float) -> str:
    """Seconds to wait as a `Retry-After` value: whole seconds, rounded up, at least 1."""
    return str(max(1, math.ceil(seconds)))
