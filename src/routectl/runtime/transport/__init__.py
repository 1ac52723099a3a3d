"""A lean HTTP/1.1 upstream client on asyncio protocols and httptools' parser.

`Transport.post` has the shape of aiohttp's `ClientSession.post` as the dialects call it, and its
`TransportReply` the surface of the `ClientResponse` the upstream walk reads (`dialects.base.Reply`).
It exists because the upstream call was the largest share of a request's CPU spent in generic
machinery (docs/performance.md, "Where the CPU of a request goes"). Modules: `client` (post,
connect, TLS), `pool` (keep-alive per origin, the connection bound), `connection` (the protocol and
parser callbacks, timeouts), `reply` (the answer), `errors`, `limits`.
"""

from routectl.runtime.transport.client import Transport
from routectl.runtime.transport.errors import (
    ResponseTooLarge,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from routectl.runtime.transport.limits import Limits
from routectl.runtime.transport.reply import TransportReply

__all__ = [
    "Limits",
    "ResponseTooLarge",
    "Transport",
    "TransportReply",
    "UpstreamConnectError",
    "UpstreamDisconnected",
    "UpstreamProtocolError",
    "UpstreamTimeout",
]
