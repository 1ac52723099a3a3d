"""Client connections of `routectl serve`: the SPEC's server timeouts, a cap on open connections,
and the count of requests in flight that a drain waits for.

aiohttp closes idle keep-alive connections, but it puts no limit on how long request headers may
take to arrive or how long a request body may stall, and none on how many connections are open:
a few hundred slow clients would hold a worker's file descriptors for good. So every accepted
connection's protocol (aiohttp's RequestHandler) is wrapped in a `_Guard` that sees each read;
the envelope (runtime/envelope.py) tells the guard, through `Connections.begin` and `end`, when
a request's headers are complete, when its body has arrived and when its handler is done; one
timer closes the connections past their deadline. A connection over the cap is answered 503 and
closed before aiohttp ever sees it.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any, cast

import orjson
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from routectl.runtime.badrequests import quiet_handlers
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.openai_chat import OPENAI_CHAT
from routectl.runtime.keys import CONNECTIONS

__all__ = [
    "Connections",
    "GuardedSite",
    "ServerLimits",
    "connection_cap",
    "raise_fd_limit",
]

# descriptors kept for everything that is not a client connection: the listening socket, the
# table file, logs, the metrics folder, DNS; the rest is split evenly between client connections
# and upstream connections (each request in flight holds at most one of each)
_RESERVED_FDS = 64
_MIN_CAP = 16
_REFUSAL_LINGER = 1.0  # seconds a refused connection may take to read its 503
_MAX_LINGERING_REFUSALS = 256  # past this a refusal is cut at once: refusals must not hold fds

# a connection's phase: what it is waiting for, and so which deadline applies
_IDLE, _HEAD, _BODY, _BUSY = range(4)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """How long a client may take, and how many may be connected (SPEC §5 defaults)."""

    header_timeout: float = 30.0  # first byte of a request -> its headers complete
    body_timeout: float = 30.0  # the longest pause while a request body arrives
    keepalive_timeout: float = 75.0  # an idle connection between requests
    max_connections: int | None = None  # None: connection_cap() of this process

    @property
    def tick(self) -> float:
        """How often deadlines are checked: a deadline fires at most one tick late."""
        return min(1.0, self.header_timeout / 4, self.body_timeout / 4, self.keepalive_timeout / 4)


def raise_fd_limit() -> int:
    """Raise this process's soft descriptor limit to its hard limit (as Go's runtime does); the
    soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):  # a sandbox may refuse: keep the soft limit
            pass
    return soft


def connection_cap() -> int:
    """Client connections this process can hold below its descriptor limit: half of what is
    left after a reserve, the other half being for the upstream connections they cause."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(_MIN_CAP, (soft - _RESERVED_FDS) // 2)


def _raw_answer(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    """An error answer written straight to the socket (no request was parsed, or none can be)."""
    body = orjson.dumps(OPENAI_CHAT.error_body(RoutingError(code, status, message)))
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\nx-should-retry: true\r\n{extra}\r\n"
    )
    return head.encode() + body


class _Guard(asyncio.Protocol):
    """Wraps one connection's aiohttp protocol; records when the client last made progress."""

    __slots__ = ("inner", "owner", "payload", "phase", "since", "transport")

    def __init__(self, inner: asyncio.Protocol, owner: Connections) -> None:
        self.inner = inner
        self.owner = owner
        self.transport: asyncio.Transport | None = None
        self.phase = _IDLE
        self.since = owner.clock
        self.payload: Any = None  # the request body's StreamReader while it arrives

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.owner.open[transport] = self
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase == _IDLE:  # the first byte of a request: its headers are due
            self.phase = _HEAD
            self.since = self.owner.clock
        elif phase == _BODY:
            self.since = self.owner.clock
        self.inner.data_received(data)
        if self.phase == _BODY and self.payload.is_eof():
            self.phase = _BUSY
            self.payload = None

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.owner.open.pop(self.transport, None)
        self.payload = None
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def time_out(self, what: str, limit: float) -> None:
        """Answer 408 and close: nothing was answered yet in either phase that times out."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        message = f"request {what} not complete within {limit:g} s"
        transport.write(_raw_answer(408, "Request Timeout", "request_timeout", message))
        transport.close()  # aiohttp's protocol sees connection_lost and cancels a waiting handler


class _Refusal(asyncio.Protocol):
    """A connection over the cap: 503, then closed once the client has had a moment to read it."""

    def __init__(self, owner: Connections) -> None:
        self.owner = owner
        self.lingers = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)
        message = f"this server holds {self.owner.cap} connections; retry shortly"
        transport.write(
            _raw_answer(
                503, "Service Unavailable", "too_many_connections", message, "Retry-After: 1\r\n"
            )
        )
        if self.owner.lingering >= _MAX_LINGERING_REFUSALS:
            transport.abort()
            return
        # half-close, read and drop the request, then close: closing with unread bytes would
        # reset the connection and the client could lose the 503 before reading it
        self.owner.lingering += 1
        self.lingers = True
        transport.write_eof()
        asyncio.get_running_loop().call_later(_REFUSAL_LINGER, transport.abort)

    def data_received(self, data: bytes) -> None:
        pass

    def connection_lost(self, exc: Exception | None) -> None:
        if self.lingers:
            self.owner.lingering -= 1


class Connections:
    """The open client connections of one app, their deadlines, and the requests in flight."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.limits = ServerLimits()
        self.cap = connection_cap()
        self.open: dict[asyncio.BaseTransport, _Guard] = {}
        self.in_flight = 0  # requests inside a handler (streams included), of any site
        self.lingering = 0
        self.clock = 0.0  # the loop's time at the last tick: reads cost no clock call
        self._timer: asyncio.TimerHandle | None = None
        self.refused = Counter(
            "routectl_connections_refused",
            "Client connections refused because the connection cap was reached",
            registry=registry,
        )
        self.timeouts = Counter(
            "routectl_client_timeouts",
            "Client connections closed with 408: headers or body too slow",
            ("phase",),
            registry=registry,
        )
        gauge = Gauge("routectl_client_connections", "Open client connections", registry=registry)
        gauge.set_function(lambda: len(self.open))

    def protocol(self, make_inner: Any) -> asyncio.Protocol:
        """The protocol of a newly accepted connection (aiohttp's, guarded; or a refusal)."""
        if len(self.open) >= self.cap:
            self.refused.inc()
            return _Refusal(self)
        return _Guard(make_inner(), self)

    def start(self, limits: ServerLimits) -> None:
        """Apply `limits` and start checking deadlines (on the running loop)."""
        self.limits = limits
        self.cap = limits.max_connections or connection_cap()
        if self._timer is None:
            self._sweep()

    def stop(self) -> None:
        """Stop checking deadlines."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = self.clock = loop.time()
        lim = self.limits
        for guard in list(self.open.values()):
            age = now - guard.since
            if guard.phase == _HEAD and age > lim.header_timeout:
                self.timeouts.labels("headers").inc()
                guard.time_out("headers", lim.header_timeout)
            elif guard.phase == _BODY and age > lim.body_timeout:
                self.timeouts.labels("body").inc()
                guard.time_out("body", lim.body_timeout)
            elif guard.phase == _IDLE and age > lim.keepalive_timeout and guard.transport:
                guard.transport.close()  # idle between requests: closed quietly
        self._timer = loop.call_later(lim.tick, self._sweep)

    def begin(self, request: web.BaseRequest) -> _Guard | None:
        """A request's handler starts: count it in flight, start its body deadline (or mark its
        connection busy when the body has arrived); its connection's guard."""
        # what the `transport` and `content` properties read, without their frames
        protocol = request._protocol
        transport = protocol.transport if protocol is not None else None
        guard = self.open.get(transport) if transport is not None else None
        if guard is not None:
            payload = request._payload
            if payload.is_eof():
                guard.phase = _BUSY
            else:
                guard.phase, guard.since, guard.payload = _BODY, self.clock, payload
        self.in_flight += 1
        return guard

    def end(self, guard: _Guard | None) -> None:
        """The request's handler is done: its connection idles until the next request."""
        self.in_flight -= 1
        if guard is not None:
            guard.phase, guard.since, guard.payload = _IDLE, self.clock, None

    async def wait_idle(self, seconds: float) -> bool:
        """Wait until no request is in flight, at most `seconds`; whether none is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while self.in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return not self.in_flight


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are guarded by the app's Connections."""

    __slots__ = ("_host", "_limits", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        limits: ServerLimits | None = None,
        reuse_port: bool = False,
        backlog: int = 1024,
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._limits = limits or ServerLimits()
        self._reuse_port = reuse_port

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        if self._server is not None and self._server.sockets:  # type: ignore[attr-defined]
            port: int = self._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            return port
        return self._port

    async def start(self) -> None:
        """Listen; every accepted connection goes through Connections.protocol."""
        await super().start()
        runner = self._runner
        assert isinstance(runner, web.AppRunner) and runner.server is not None
        conns = runner.app[CONNECTIONS]
        conns.start(self._limits)
        make_inner = quiet_handlers(runner.server)  # parse errors quote no header
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: conns.protocol(make_inner),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_port=self._reuse_port or None,
        )

    async def stop(self) -> None:
        """Stop listening and checking deadlines."""
        runner = self._runner
        assert isinstance(runner, web.AppRunner)
        runner.app[CONNECTIONS].stop()
        await super().stop()
