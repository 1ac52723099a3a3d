"""The runtime's tunable limits and their defaults, in one place (serve's flags read them)."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_BODY_BYTES", "DEFAULT_UPSTREAM_CONNECTIONS", "UPSTREAM_CLIENTS"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024  # larger request bodies: 413 request_too_large
DEFAULT_UPSTREAM_CONNECTIONS = 1000  # the keep-alive pool's bound, all upstreams together
# the upstream HTTP client, the default first: routectl's lean client, or aiohttp's ClientSession
UPSTREAM_CLIENTS = ("lean", "aiohttp")
