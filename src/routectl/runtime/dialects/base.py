"""What every upstream dialect shares: the attempt it is given, the reply it gives back, and the
HTTP sending that the network dialects have in common."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from routectl.table import Model

__all__ = ["Attempt", "Body", "Endpoint", "HttpDialect", "Reply", "request_headers"]

# Sent on every upstream request. Naming them here (instead of letting aiohttp add its defaults,
# or skipping them with skip_auto_headers, which copies and sorts headers per request) keeps the
# client on its fast path; identity encoding because the client does not decompress.
_UPSTREAM_DEFAULTS = {"Accept": "*/*", "Accept-Encoding": "identity", "User-Agent": "routectl"}


def request_headers(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    """A connection's upstream request headers, built once per table (its key lives only here)."""
    return CIMultiDictProxy(CIMultiDict({**_UPSTREAM_DEFAULTS, **headers}))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and how a connection is called: built once per table load."""

    url: URL
    headers: CIMultiDictProxy[str]


@dataclass(slots=True)
class Attempt:
    """One upstream attempt of a request, as a dialect needs it."""

    body: dict[str, Any]  # the request in the format the dialect is given (see `native`)
    native: bool  # True: `body` is in the dialect's own format (pass through); else OpenAI chat
    stream: bool
    model_id: str  # the routed model id, `provider/model`
    upstream_model: str  # the name the upstream knows it by
    info: Model | None  # the table's entry for the model
    request_id: str
    prompt_tokens: int  # the router's estimate (echo reports it as usage)


class Body(Protocol):
    """What the upstream walk reads of a reply body (aiohttp's StreamReader has it)."""

    async def readany(self) -> bytes:
        """The next chunk, b"" at the end."""
        ...


class Reply(Protocol):
    """An upstream's answer: aiohttp's ClientResponse, or a local dialect's stand-in for one."""

    @property
    def status(self) -> int:
        """HTTP status."""
        ...

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """Response headers."""
        ...

    @property
    def content(self) -> Body:
        """The body, chunk by chunk (streams)."""
        ...

    async def read(self) -> bytes:
        """The whole body."""
        ...

    def release(self) -> None:
        """Give the connection back to the pool."""
        ...

    def close(self) -> None:
        """Drop the connection (a client that left mid-stream)."""
        ...


class HttpDialect:
    """A dialect that POSTs one request to its endpoint; subclasses say how to encode it."""

    name = ""
    native: str | None = None

    def encode(self, attempt: Attempt) -> bytes:
        """The upstream request body."""
        raise NotImplementedError

    def send(
        self,
        session: aiohttp.ClientSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply]:
        """POST the encoded attempt (awaiting it raises TimeoutError / aiohttp.ClientError).

        Returns the request's awaitable itself: one coroutine frame less per resume."""
        assert endpoint is not None, "a network dialect always has an endpoint"
        return session.post(
            endpoint.url, data=self.encode(attempt), headers=endpoint.headers, timeout=timeout
        )
