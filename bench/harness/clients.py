"""The upstream client candidates of issue 16, behind one surface: the dialects' `post` -> `Reply`.

- `aiohttp`: `ClientSession` as `runtime/app.py` tunes it (keep-alive pool, no cookies, no
  decompression), the runtime's client until issue 16.
- `lean`: `routectl.runtime.transport.Transport` (asyncio protocol + httptools).
- `pyreqwest`: the Rust `reqwest` client through `pyreqwest` (its own Tokio threads); JSON answers
  come fully read in Rust (`build().send()`), streams through `build_streamed()`.

Used by bench/bench_clients.py (the clients alone) and bench/passthrough.py --client (a proxy).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from routectl.runtime.transport import Transport

CLIENTS = ("aiohttp", "lean", "pyreqwest")


class Body(Protocol):
    async def readany(self) -> bytes: ...


class Reply(Protocol):
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> CIMultiDictProxy[str]: ...
    @property
    def content(self) -> Body: ...
    async def read(self) -> bytes: ...
    def release(self) -> None: ...
    def close(self) -> None: ...


Post = Callable[[URL, bytes, Mapping[str, str], bool], Awaitable[Reply]]

_CLOSING: set[asyncio.Future[None]] = set()
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=30)


def pyreqwest_available() -> str | None:
    """None when pyreqwest imports, else why not."""
    try:
        import pyreqwest.client  # noqa: F401
    except ImportError as exc:
        return f"pyreqwest not installed ({exc})"
    return None


class _ReqwestReply:
    """A pyreqwest response read like aiohttp's ClientResponse."""

    def __init__(self, resp: Any, stream_ctx: Any | None, body: bytes | None) -> None:
        self.status: int = resp.status
        self._resp = resp
        self._ctx = stream_ctx
        self._body = body
        self._headers: CIMultiDictProxy[str] | None = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        if self._headers is None:
            self._headers = CIMultiDictProxy(CIMultiDict(self._resp.headers.items()))
        return self._headers

    @property
    def content(self) -> _ReqwestReply:
        return self

    async def readany(self) -> bytes:
        if self._body is not None:
            body, self._body = self._body, b""
            return body
        chunk = await self._resp.body_reader.read_chunk()
        return b"" if chunk is None else bytes(chunk)

    async def read(self) -> bytes:
        if self._body is not None:
            return self._body
        return bytes(await self._resp.bytes())

    def release(self) -> None:
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            # release() is synchronous in the Reply surface; pyreqwest's close is a coroutine
            task = asyncio.ensure_future(ctx.__aexit__(None, None, None))
            _CLOSING.add(task)
            task.add_done_callback(_CLOSING.discard)

    def close(self) -> None:
        self.release()


@asynccontextmanager
async def open_client(name: str, limit: int = 1000) -> AsyncIterator[Post]:
    """A client by name, as a `post(url, body, headers, stream)` function."""
    if name == "aiohttp":
        connector = aiohttp.TCPConnector(limit=limit, keepalive_timeout=30)
        async with aiohttp.ClientSession(
            connector=connector, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        ) as session:

            def post_aiohttp(
                url: URL, body: bytes, headers: Mapping[str, str], stream: bool
            ) -> Awaitable[Reply]:
                return session.post(url, data=body, headers=headers, timeout=TIMEOUT)

            yield post_aiohttp
    elif name == "lean":
        transport = Transport()
        try:

            def post_lean(
                url: URL, body: bytes, headers: Mapping[str, str], stream: bool
            ) -> Awaitable[Reply]:
                return transport.post(url, data=body, headers=headers, timeout=TIMEOUT)

            yield post_lean
        finally:
            await transport.close()
    elif name == "pyreqwest":
        from pyreqwest.client import ClientBuilder

        builder = ClientBuilder().follow_redirects(False).max_connections(limit)
        builder = builder.timeout(dt.timedelta(seconds=30))
        async with builder.build() as client:

            async def post_reqwest(
                url: URL, body: bytes, headers: Mapping[str, str], stream: bool
            ) -> Reply:
                req = client.post(str(url)).headers(dict(headers)).body_bytes(body)
                if not stream:
                    resp = await req.build().send()
                    return _ReqwestReply(resp, None, bytes(await resp.bytes()))
                ctx = req.build_streamed()
                resp = await ctx.__aenter__()
                return _ReqwestReply(resp, ctx, None)

            yield post_reqwest
    else:
        raise ValueError(f"unknown client {name!r}; one of {', '.join(CLIENTS)}")
