"""The lean client's failures, as subclasses of aiohttp's client errors.

The upstream walk (`runtime/upstream.py`) and the token counter catch `TimeoutError` and
`aiohttp.ClientError`; raising subclasses of those keeps both unchanged whichever client is in use.
"""

from __future__ import annotations

import aiohttp

__all__ = [
    "ResponseTooLarge",
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamProtocolError",
    "UpstreamTimeout",
]


class UpstreamConnectError(aiohttp.ClientConnectionError):
    """No connection could be opened to the upstream (refused, unreachable, TLS handshake)."""


class UpstreamDisconnected(aiohttp.ServerDisconnectedError):
    """The upstream closed the connection before its answer was complete.

    Raised, never retried: once a request's first byte was written it may have reached the
    upstream, and a POST is not sent twice behind the caller's back."""


class UpstreamProtocolError(aiohttp.ClientPayloadError):
    """The upstream's answer is not valid HTTP/1.1 (or not one this client accepts)."""


class ResponseTooLarge(UpstreamProtocolError):
    """A body read whole (`read()`) is over the client's limit, or its headers are too large."""


class UpstreamTimeout(aiohttp.ServerTimeoutError):
    """Connecting, or waiting for the next bytes of the answer, took longer than allowed."""
