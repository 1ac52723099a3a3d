"""The lean upstream client: `Transport.post`, shaped like aiohttp's `ClientSession.post`.

What it does, and only that: POST a body over HTTP/1.1 with keep-alive per origin (TLS via `ssl`),
bound the answer's size and the time between its bytes, and hand back a `TransportReply`. It never
follows a redirect (a 3xx is returned as it came), never decompresses, keeps no cookies, and never
sends a request twice: a pooled connection found closed *before* writing is replaced by a fresh one;
once a byte was written, a failure is the caller's to handle (see `errors.UpstreamDisconnected`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from routectl.runtime.transport.connection import Connection
from routectl.runtime.transport.errors import UpstreamConnectError, UpstreamTimeout
from routectl.runtime.transport.limits import Limits
from routectl.runtime.transport.pool import Pool
from routectl.runtime.transport.reply import TransportReply

__all__ = ["Transport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# the client writes these itself; a caller's value would contradict the framing
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_MAX_CACHED_BLOCKS = 256
_ONE_WRITE = 64 * 1024  # below this the head and body go out as one buffer


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    prefix: bytes  # request line and Host header


class Transport:
    """A pool of keep-alive HTTP/1.1 connections, one client per app (like a ClientSession)."""

    def __init__(self, limits: Limits | None = None, ssl_context: ssl.SSLContext | None = None):
        self.limits = limits or Limits()
        self._ssl = ssl_context
        self._pool: Pool | None = None
        # id(url) -> (url, its target): an int key, not the URL (yarl's __hash__ is a
        # Python-level call per request); the URL is kept so its id stays its own
        self._targets: dict[int, tuple[URL, _Target]] = {}
        # id(headers) -> (headers, their encoded lines): the view is kept so its id stays its own
        self._blocks: dict[int, tuple[object, bytes]] = {}
        self.closed = False

    async def post(
        self,
        url: URL,
        *,
        data: bytes,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        allow_redirects: bool = False,
    ) -> TransportReply:
        """POST `data` to `url`; the reply once its status line and headers are in.

        Raises UpstreamTimeout (a TimeoutError) or an aiohttp.ClientError subclass. Redirects are
        never followed, whatever `allow_redirects` says (accepted for ClientSession's shape)."""
        if self.closed:
            raise UpstreamConnectError("the upstream client is closed")
        found_target = self._targets.get(id(url))
        if found_target is not None and found_target[0] is url:
            target = found_target[1]
        else:
            target = self._target(url)
        # _block's cache read inline (the endpoints' headers are always found there)
        found = self._blocks.get(id(headers))
        block = found[1] if found is not None and found[0] is headers else self._block(headers)
        head = b"%s%sContent-Length: %d\r\n\r\n" % (target.prefix, block, len(data))
        pool = self._pool or self._start()
        conn = pool.take(target.origin)
        if conn is None:
            conn = await self._connect(target, timeout)
        reply = TransportReply(conn, self.limits.max_body_bytes, pool.put)
        # the exchange begins: the connection's reply, its read timeout and total deadline (set
        # here rather than by a method of the connection: one frame less per request)
        conn.reply = reply
        conn.read_timeout = timeout.sock_read or None
        now = conn.last_activity = conn.loop.time()
        total = timeout.total
        conn.deadline = now + total if total else None
        try:
            transport = conn.transport
            if transport is None:  # lost between the pool and here: nothing was written
                raise UpstreamConnectError("the pooled connection closed before use")
            if len(data) < _ONE_WRITE:
                transport.write(head + data)
            else:
                transport.write(head)
                transport.write(data)
            while not reply.headers_done:
                if reply.error is not None:
                    raise reply.error
                await conn.wait()
            if reply.error is not None:
                raise reply.error
        except BaseException:
            reply.close()  # cancelled or failed: never back to the pool half-read
            raise
        return reply

    async def close(self) -> None:
        """Close every connection; later posts fail."""
        self.closed = True
        if self._pool is not None:
            self._pool.close_all()
        await asyncio.sleep(0)  # let the transports run connection_lost

    # ------------------------------------------------------------ internals

    def _start(self) -> Pool:
        self._pool = Pool(asyncio.get_running_loop(), self.limits)
        return self._pool

    def _target(self, url: URL) -> _Target:
        scheme = url.scheme
        host = url.raw_host
        if scheme not in _DEFAULT_PORTS or not host:
            raise UpstreamConnectError(f"not an http(s) URL: {url}")
        port = url.port or _DEFAULT_PORTS[scheme]
        authority = f"[{host}]" if ":" in host else host
        if url.explicit_port is not None and port != _DEFAULT_PORTS[scheme]:
            authority = f"{authority}:{port}"
        path = url.raw_path_qs or "/"
        prefix = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
        target = _Target((scheme, host, port), host, port, scheme == "https", prefix)
        if len(self._targets) >= _MAX_CACHED_BLOCKS:
            self._targets.clear()
        self._targets[id(url)] = (url, target)
        return target

    def _block(self, headers: Mapping[str, str]) -> bytes:
        # read-only views (the endpoints' headers, built once per table) are encoded once; any
        # other mapping could change between calls, so it is encoded every time
        cacheable = isinstance(headers, CIMultiDictProxy)
        if cacheable:
            found = self._blocks.get(id(headers))
            if found is not None and found[0] is headers:
                return found[1]
        lines = []
        for name, value in headers.items():
            if name.lower() in _OWN_HEADERS:
                continue
            if any(c in name or c in value for c in "\r\n\0"):
                raise ValueError(f"upstream request header {name!r} holds a line break")
            lines.append(f"{name}: {value}\r\n")
        block = "".join(lines).encode("utf-8")
        if cacheable:
            if len(self._blocks) >= _MAX_CACHED_BLOCKS:
                self._blocks.clear()
            self._blocks[id(headers)] = (headers, block)
        return block

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, target: _Target, timeout: aiohttp.ClientTimeout) -> Connection:
        seconds = timeout.sock_connect or timeout.connect or timeout.total
        pool = self._pool
        assert pool is not None
        loop = pool.loop
        try:
            idle = await pool.slot(target.origin, seconds)
        except TimeoutError:
            raise UpstreamTimeout(f"no free upstream connection within {seconds} s") from None
        if idle is not None:
            return idle
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, target.origin, self.limits, pool.lost),
                    target.host,
                    target.port,
                    ssl=self._context() if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
        except TimeoutError:
            pool.abandoned()
            raise UpstreamTimeout(f"connect to {target.host}:{target.port} timed out") from None
        except OSError as exc:  # refused, unreachable, TLS (ssl.SSLError is an OSError)
            pool.abandoned()
            raise UpstreamConnectError(
                f"cannot connect to {target.host}:{target.port}: {exc}"
            ) from exc
        except BaseException:
            pool.abandoned()
            raise
        pool.opened(conn)
        return conn
