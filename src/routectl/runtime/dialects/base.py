"""What every upstream dialect shares: the attempt it is given, the reply it gives back, and the
HTTP sending that the network dialects have in common."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from routectl.table import Model

__all__ = [
    "Attempt",
    "Body",
    "Endpoint",
    "HttpDialect",
    "Reply",
    "UpstreamSession",
    "attempt_headers",
    "replace_model",
    "request_headers",
]

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
    # client format -> the URL a request of that format goes to natively, when not `url`
    # (an OpenAI-compatible server's /embeddings and /responses beside /chat/completions)
    urls: Mapping[str, URL] = field(default_factory=dict)


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
    raw: bytes | None = None  # native only: the client's body bytes, to forward as sent
    headers: Mapping[str, str] | None = None  # native only: client headers the upstream gets
    format: str = "openai.chat"  # the client's format (native: which API of the upstream)


_KEY = b'"model"'
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_SPACE = b" \t\r\n"


def replace_model(raw: bytes, old: str, new: str) -> bytes | None:
    """`raw` (a JSON object's bytes) with its `"model": old` value replaced by `new`, every other
    byte as sent; None when that cannot be done surely (the caller re-encodes the object then).

    In valid JSON an unescaped `"model"` followed by `:` is a key; exactly one such key whose
    value is `old` is the top-level one, the one the body was routed by. A body where that key is
    written with escapes, or repeated, is re-encoded instead.
    """
    found: tuple[int, int] | None = None
    at = raw.find(_KEY)
    while at >= 0:
        slashes = 0
        while at - slashes > 0 and raw[at - slashes - 1] == 0x5C:  # backslash
            slashes += 1
        end = at + len(_KEY)
        colon = end
        while colon < len(raw) and raw[colon] in _SPACE:
            colon += 1
        if slashes % 2 == 0 and colon < len(raw) and raw[colon] == 0x3A:  # a key
            if found is not None:
                return None
            start = colon + 1
            while start < len(raw) and raw[start] in _SPACE:
                start += 1
            string = _STRING.match(raw, start)
            if string is None:
                return None
            found = string.span()
        at = raw.find(_KEY, end)
    if found is None:
        return None
    start, end = found
    value = raw[start:end]
    if value != orjson.dumps(old):  # as orjson writes it (the usual case), else decoded
        try:
            if orjson.loads(value) != old:
                return None
        except orjson.JSONDecodeError:
            return None
    return raw[:start] + orjson.dumps(new) + raw[end:]


class Body(Protocol):
    """What the upstream walk reads of a reply body (aiohttp's StreamReader has it)."""

    async def readany(self) -> bytes:
        """The next chunk, b"" at the end."""
        ...

    def at_eof(self) -> bool:
        """True once the body has ended and every byte of it was read (readany's next is b"")."""
        ...


class Reply(Protocol):
    """An upstream's answer: the lean client's TransportReply, aiohttp's ClientResponse, or a
    local dialect's stand-in for one."""

    @property
    def status(self) -> int:
        """HTTP status."""
        ...

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """Response headers."""
        ...

    @property
    def content_length(self) -> int | None:
        """Content-Length as a number (the HTTP parsers refuse one that is not digits)."""
        ...

    @property
    def content_type(self) -> str:
        """The Content-Type's media type, lowercased, without its parameters;
        "application/octet-stream" without one (as aiohttp's ClientResponse says)."""
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


class UpstreamSession(Protocol):
    """What sends the upstream requests: the lean client (`runtime/transport`, the default) or
    aiohttp's ClientSession (`serve --upstream-client aiohttp`); both fit this surface."""

    @property
    def closed(self) -> bool:
        """True once closed (readiness)."""
        ...

    def post(
        self,
        url: URL,
        *,
        data: bytes,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        allow_redirects: bool = ...,
    ) -> Awaitable[Reply]:
        """POST; awaiting gives the reply once its headers are in (TimeoutError or
        aiohttp.ClientError on failure). The lean client never follows redirects."""
        ...


def attempt_headers(endpoint: Endpoint, attempt: Attempt) -> CIMultiDictProxy[str]:
    """The connection's headers, with the client's forwarded ones (native attempts) over them."""
    if not attempt.headers:
        return endpoint.headers  # the common case: no copy
    merged = CIMultiDict(endpoint.headers)
    merged.update(attempt.headers)
    return CIMultiDictProxy(merged)


class HttpDialect:
    """A dialect that POSTs one request to its endpoint; subclasses say how to encode it."""

    name = ""
    native: str | None = None

    def native_for(self, fmt: str, model: Model | None) -> bool:
        """Whether a request of client format `fmt` for `model` goes to this upstream as sent."""
        return fmt == self.native

    def encode(self, attempt: Attempt) -> bytes:
        """The upstream request body."""
        raise NotImplementedError

    def send(
        self,
        session: UpstreamSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply]:
        """POST the encoded attempt (awaiting it raises TimeoutError / aiohttp.ClientError).

        Returns the request's awaitable itself: one coroutine frame less per resume."""
        assert endpoint is not None, "a network dialect always has an endpoint"
        return session.post(
            endpoint.urls.get(attempt.format, endpoint.url) if endpoint.urls else endpoint.url,
            data=self.encode(attempt),
            # attempt_headers' common case inline: no forwarded headers, the endpoint's as they are
            headers=attempt_headers(endpoint, attempt) if attempt.headers else endpoint.headers,
            timeout=timeout,
            allow_redirects=False,  # a 3xx is an upstream failure: never re-send key and prompt
        )

    def count_tokens(
        self,
        session: UpstreamSession,
        endpoint: Endpoint | None,
        attempt: Attempt,
        timeout: aiohttp.ClientTimeout,
    ) -> Awaitable[Reply] | None:
        """Ask the upstream to count a native request's input tokens; None when it cannot."""
        return None
