"""The app's upstream HTTP client, by name: one keep-alive pool per app, opened and closed with it.

"lean" (the default) is routectl's own HTTP/1.1 client (`runtime/transport`): about a fifth of the
CPU per request of aiohttp's ClientSession, measured in docs/performance.md. "aiohttp" keeps
`ClientSession` (`serve --upstream-client aiohttp`), tuned as before. Both fit
`dialects.UpstreamSession`, so the dialects and the upstream walk do not know which one runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from routectl.runtime.dialects import UpstreamSession
from routectl.runtime.options import UPSTREAM_CLIENTS
from routectl.runtime.transport import Limits, Transport

__all__ = ["open_upstream_client"]

_KEEPALIVE_S = 30.0


@asynccontextmanager
async def open_upstream_client(name: str, connection_limit: int) -> AsyncIterator[UpstreamSession]:
    """The client called `name`, bounded to `connection_limit` open connections (0: no bound)."""
    if name not in UPSTREAM_CLIENTS:
        raise ValueError(f"unknown upstream client {name!r}; one of {', '.join(UPSTREAM_CLIENTS)}")
    if name == "lean":
        transport = Transport(Limits(max_connections=connection_limit, keepalive_s=_KEEPALIVE_S))
        try:
            yield transport
        finally:
            await transport.close()
        return
    connector = aiohttp.TCPConnector(limit=connection_limit, keepalive_timeout=_KEEPALIVE_S)
    # no cookie jar: a gateway must not carry one caller's upstream cookies to the next; no
    # decompression: bodies pass through as they came (requests ask for identity encoding)
    async with aiohttp.ClientSession(
        connector=connector,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:
        yield session
