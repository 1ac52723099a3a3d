"""Every typed key of the runtime's aiohttp application and of its requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from routectl.runtime.connections import Connections
    from routectl.runtime.ingress import ClientFormat
    from routectl.runtime.served import Runtime, ServedTable

__all__ = [
    "ANSWER_HEADERS",
    "CONNECTIONS",
    "FORMATS",
    "RECORD",
    "REQUEST_ID",
    "RUNTIME",
    "RUNTIME_OF",
    "SERVED",
    "STARTED",
]

RUNTIME: web.AppKey[Runtime] = web.AppKey("routectl_runtime")
# the client connections: timeouts, the cap, requests in flight (runtime/connections.py)
CONNECTIONS: web.AppKey[Connections] = web.AppKey("routectl_connections")
# route path (canonical) -> the client format its errors answer in; OpenAI chat when absent
FORMATS: web.AppKey[dict[str, ClientFormat]] = web.AppKey("routectl_formats")

# request-scoped, set by the envelope before any handler runs
SERVED: web.RequestKey[ServedTable] = web.RequestKey("routectl_served")  # the table deciding it
# the app's RUNTIME again, where a handler reads it without `request.app` (two properties) and a
# Python-level `Application.__getitem__`
RUNTIME_OF: web.RequestKey[Runtime] = web.RequestKey("routectl_runtime_of")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("routectl_request_id")
RECORD: web.RequestKey[dict[str, Any]] = web.RequestKey("routectl_record")  # its access-log line
STARTED: web.RequestKey[float] = web.RequestKey("routectl_started")  # its perf_counter() at arrival
# headers every answer to the request carries, errors and streams included (x-ratelimit-*)
ANSWER_HEADERS: web.RequestKey[dict[str, str]] = web.RequestKey("routectl_answer_headers")
