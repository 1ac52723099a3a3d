"""One keep-alive HTTP/1.1 connection to an upstream: an asyncio protocol around httptools' parser.

The connection carries one exchange at a time (no pipelining). The parser's callbacks fill the
current `TransportReply` and wake whoever waits on it; timeouts are one timer per exchange, moved
lazily rather than re-armed on every chunk (a chunk only records when it came).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import httptools

from routectl.runtime.transport.errors import (
    ResponseTooLarge,
    UpstreamDisconnected,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from routectl.runtime.transport.limits import Limits

if TYPE_CHECKING:
    from routectl.runtime.transport.reply import TransportReply

__all__ = ["Connection"]


class Connection(asyncio.Protocol):
    """A socket to one origin, its parser, and the exchange in progress on it (if any)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        origin: tuple[str, str, int],
        limits: Limits,
        on_lost: Callable[[Connection], None],
    ) -> None:
        self.loop = loop
        self.origin = origin
        self.limits = limits
        self.on_lost = on_lost
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False  # lost, closing, or unusable for another exchange
        self.reply: TransportReply | None = None
        self.idle_since = 0.0
        # the exchange's waiting: one waiter, one lazily moved timer
        self.waiter: asyncio.Future[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.read_timeout: float | None = None
        self.deadline: float | None = None  # a total timeout's end, absolute loop time
        self.last_activity = 0.0
        self.paused = False
        # headers of the message being parsed
        self._raw: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._informational = False

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        reply = self.reply
        if reply is None or reply.done:
            # nothing was asked: bytes from an idle connection make it unusable
            self.close()
            return
        self.last_activity = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ResponseTooLarge | UpstreamProtocolError):
                self.fail(cause)
            else:
                self.fail(UpstreamProtocolError(f"invalid HTTP response from the upstream: {exc}"))
        except httptools.HttpParserUpgrade:
            self.fail(UpstreamProtocolError("the upstream switched protocols"))

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.transport = None
        reply = self.reply
        if reply is not None and not reply.done:
            if reply.headers_done and reply.until_close:
                self._complete(reply, keep_alive=False)  # a body delimited by the close
            elif reply.headers_done:
                self.fail(UpstreamDisconnected("the upstream closed the connection mid-body"))
            else:
                self.fail(
                    UpstreamDisconnected("the upstream closed the connection before answering")
                )
        self._cancel_timer()
        self.on_lost(self)

    # ------------------------------------------------------------ httptools callbacks

    def on_message_begin(self) -> None:
        reply = self.reply
        if reply is None or reply.done:  # a second answer to one request: stop reading it
            raise UpstreamProtocolError("unsolicited bytes after the upstream's answer")
        self._raw = []
        self._header_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        raw = self._raw
        raw.append((name, value))
        self._header_bytes += len(name) + len(value)
        limits = self.limits
        if self._header_bytes > limits.max_header_bytes or len(raw) > limits.max_headers:
            raise ResponseTooLarge(
                f"upstream response headers over {limits.max_header_bytes} bytes"
                f" or {limits.max_headers} fields"
            )

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        reply = self.reply
        assert reply is not None
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: the answer is still to come
            self._informational = True
            return
        self._informational = False
        reply.status = status
        reply.raw_headers = self._raw
        length = until_close = None
        for name, value in self._raw:
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding" and value.lower().find(b"chunked") >= 0:
                until_close = False
            elif lower == b"content-type":  # its media type (parameters and case dropped)
                reply.content_type = value.partition(b";")[0].strip().lower().decode("latin-1")
        if length is not None:
            reply.content_length = length
        elif until_close is None and status not in (204, 304):
            reply.until_close = True  # neither length nor chunked: the body ends with the close
        reply.headers_done = True
        # _wake, inline (once per answer: a Python-level call costs about as much as the rest)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_body(self, body: bytes) -> None:
        reply = self.reply
        assert reply is not None
        reply.chunks.append(body)
        reply.received += len(body)
        reply.buffered += len(body)
        if reply.buffered > self.limits.high_water and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()
        # _wake, inline: the parser calls this for every chunk of the body (each event of a
        # stream), and a Python-level call costs about as much as the rest of it
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        reply = self.reply
        assert reply is not None
        # _complete and its _wake, inline (once per answer); the timer stays, as there
        reply.done = True
        reply.keep_alive = self.parser.should_keep_alive()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # ------------------------------------------------------------ the exchange

    async def wait(self) -> None:
        """Until the parser has something new for the exchange (or it failed)."""
        waiter = self.loop.create_future()
        self.waiter = waiter
        if self.read_timeout or self.deadline:
            # the read timeout counts while someone waits: from the wait's start or the last bytes
            self.last_activity = max(self.last_activity, self.loop.time())
            timer = self.timer
            # one timer outlives the exchanges of a connection (no call_at + cancel per request);
            # it is moved only when this exchange is due before it fires (_due, inline)
            due = self.last_activity + self.read_timeout if self.read_timeout else float("inf")
            if self.deadline is not None:
                due = min(due, self.deadline)
            if timer is None or timer.when() > due:
                if timer is not None:
                    timer.cancel()
                self._arm()
        try:
            await waiter
        finally:
            self.waiter = None

    def resume(self) -> None:
        """The reader took enough buffered body: read from the socket again."""
        if self.paused and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()

    def fail(self, error: Exception) -> None:
        """End the exchange with `error` and drop the connection."""
        reply = self.reply
        if reply is not None and not reply.done and reply.error is None:
            reply.error = error
        self.close()
        self._wake()

    def close(self) -> None:
        """Drop the connection (connection_lost follows, asynchronously)."""
        self.closed = True
        self._cancel_timer()
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    # ------------------------------------------------------------ internals

    def _complete(self, reply: TransportReply, keep_alive: bool) -> None:
        reply.done = True
        reply.keep_alive = keep_alive
        self._wake()  # the timer stays: with no waiter when it fires, it just lapses

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _arm(self) -> None:
        due = self._due()
        self.timer = self.loop.call_at(due, self._on_timer)

    def _due(self) -> float:
        due = float("inf")
        if self.read_timeout:
            due = self.last_activity + self.read_timeout
        if self.deadline is not None:
            due = min(due, self.deadline)
        return due

    def _on_timer(self) -> None:
        self.timer = None
        if self.waiter is None:  # nobody waits: the next wait arms it again
            return
        now = self.loop.time()
        if now >= self._due() - 0.001:
            total = self.deadline is not None and now >= self.deadline - 0.001
            phase = "total" if total else "read"
            self.fail(UpstreamTimeout(f"upstream {phase} timeout"))
        else:
            self._arm()

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
