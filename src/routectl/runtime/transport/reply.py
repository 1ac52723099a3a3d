"""An upstream's answer read off a lean connection, with the surface of aiohttp's ClientResponse
that the upstream walk uses (`dialects.base.Reply`): status, headers, content.readany() and
content.at_eof(), read(), release(), close()."""

from __future__ import annotations

from collections.abc import Callable

from multidict import CIMultiDict, CIMultiDictProxy

from routectl.runtime.transport.connection import Connection
from routectl.runtime.transport.errors import ResponseTooLarge

__all__ = ["TransportReply"]

_NO_CONTENT_TYPE = "application/octet-stream"  # RFC 9110's default, and aiohttp's


class TransportReply:
    """One exchange's answer. The connection fills it; the reader drains it.

    Headers are decoded into a multidict only when asked for: a JSON answer routed as usual never
    looks at them.
    """

    __slots__ = (
        "_give_back",
        "_headers",
        "buffered",
        "chunks",
        "conn",
        "content_length",
        "content_type",
        "done",
        "error",
        "headers_done",
        "keep_alive",
        "max_body",
        "raw_headers",
        "received",
        "status",
        "until_close",
    )

    def __init__(
        self, conn: Connection, max_body: int, give_back: Callable[[Connection], None]
    ) -> None:
        self.conn: Connection | None = conn
        self.max_body = max_body
        self._give_back = give_back
        self.status = 0
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0  # bytes in `chunks`
        self.received = 0  # body bytes so far
        self.content_length: int | None = None  # Content-Length, when given (as aiohttp names it)
        # the media type, as aiohttp's ClientResponse.content_type gives it: a stream's check
        # reads it without decoding every header into a multidict
        self.content_type = _NO_CONTENT_TYPE
        self.until_close = False
        self.headers_done = False
        self.done = False  # the whole message is parsed
        self.keep_alive = False
        self.error: Exception | None = None

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers, every field as received (repeated ones included)."""
        if self._headers is None:
            # as aiohttp decodes them: UTF-8, bytes that are not kept as surrogates
            # a list, not a generator: no generator frame resumed per field
            self._headers = CIMultiDictProxy(
                CIMultiDict(
                    [
                        (n.decode("latin-1"), v.decode("utf-8", "surrogateescape"))
                        for n, v in self.raw_headers
                    ]
                )
            )
        return self._headers

    @property
    def content(self) -> TransportReply:
        """The body, chunk by chunk (`readany`)."""
        return self

    async def readany(self) -> bytes:
        """Whatever body bytes have arrived (waiting for some), b"" at the end of the body."""
        while True:
            chunks = self.chunks
            if chunks:
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                chunks.clear()
                self.buffered = 0
                conn = self.conn
                if conn is not None and conn.paused:
                    conn.resume()
                return data
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            conn = self.conn
            if conn is None:  # closed by its reader
                return b""
            await conn.wait()

    def at_eof(self) -> bool:
        """The whole body was received and read: `readany` has nothing more to give."""
        return self.done and not self.chunks and self.error is None

    async def read(self) -> bytes:
        """The whole body, at most `max_body` bytes (ResponseTooLarge past that)."""
        if self.content_length is not None and self.content_length > self.max_body:
            self._too_large()
        parts: list[bytes] = []
        while True:
            if self.received > self.max_body:
                self._too_large()
            chunks = self.chunks
            if chunks:
                parts.extend(chunks)
                chunks.clear()
                self.buffered = 0
                conn = self.conn
                if conn is not None and conn.paused:
                    conn.resume()
            if self.error is not None:
                raise self.error
            if self.done:
                break
            conn = self.conn
            if conn is None:
                break
            await conn.wait()
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)

    def release(self) -> None:
        """Give the connection back to the pool when the answer was read off it whole and the
        upstream keeps it open; otherwise close it."""
        conn = self.conn
        if conn is None:
            return
        self.conn = None
        conn.reply = None
        if self.done and self.keep_alive and self.error is None and not conn.closed:
            self._give_back(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Drop the connection (a reader that gives up mid-body)."""
        conn = self.conn
        if conn is None:
            return
        self.conn = None
        conn.reply = None
        conn.close()

    def _too_large(self) -> None:
        error = ResponseTooLarge(f"upstream response body over {self.max_body} bytes")
        self.error = error
        self.close()
        raise error
