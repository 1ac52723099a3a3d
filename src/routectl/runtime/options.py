"""The runtime's tunable limits and their defaults, in one place (serve's flags read them)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_UPSTREAM_CONNECTIONS",
    "MAX_JSON_DEPTH",
    "UPSTREAM_CLIENTS",
]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024  # larger request bodies: 413 request_too_large
DEFAULT_UPSTREAM_CONNECTIONS = 1000  # the keep-alive pool's bound, all upstreams together
# a larger non-streamed upstream body (error bodies too), or one larger stream event: the
# attempt fails as a bad gateway (SPEC §5 --max-response-bytes)
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# a request body nested deeper (objects and arrays) is a 400 before anything is decided; the
# deepest real chat request (tool schemas in messages) is far below it
MAX_JSON_DEPTH = 64
# the upstream HTTP client, the default first: routectl's lean client, or aiohttp's ClientSession
UPSTREAM_CLIENTS = ("lean", "aiohttp")
