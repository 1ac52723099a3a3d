"""Keep-alive connections per origin, and the bound on open connections.

Idle connections are reused most-recent first (the warmest socket, and the stalest ones age out
at the bottom). One sweep timer per pool closes those idle past `keepalive_s`; a connection the
upstream closed while idle is skipped when taken (its `closed` flag is set by connection_lost).
"""

from __future__ import annotations

import asyncio
from collections import deque

from routectl.runtime.transport.connection import Connection
from routectl.runtime.transport.limits import Limits

__all__ = ["Pool"]

Origin = tuple[str, str, int]


class Pool:
    """Idle connections by origin; counts open ones and queues those who wait for a slot."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: Limits) -> None:
        self.loop = loop
        self.limits = limits
        self.idle: dict[Origin, list[Connection]] = {}
        self.open: set[Connection] = set()
        self.opening = 0  # connects under way, counted against the limit
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._sweep: asyncio.TimerHandle | None = None

    def take(self, origin: Origin) -> Connection | None:
        """A live idle connection to `origin`, or None."""
        stack = self.idle.get(origin)
        while stack:
            conn = stack.pop()
            if not conn.closed:
                return conn
        return None

    def put(self, conn: Connection) -> None:
        """An answered connection back to the pool (a closed one is dropped)."""
        if conn.closed:
            return
        conn.idle_since = self.loop.time()
        stack = self.idle.get(conn.origin)
        if stack is None:
            stack = self.idle[conn.origin] = []
        stack.append(conn)
        if self._slot_waiters:  # someone waits at the bound: this one may be theirs to reuse
            self._wake_one()
        if self._sweep is None:
            self._sweep = self.loop.call_later(self.limits.keepalive_s / 2, self._expire)

    async def slot(self, origin: Origin, timeout: float | None) -> Connection | None:
        """Room for one more connection to `origin` (None: connect now), or an idle connection
        to it that was released meanwhile. At the bound, an idle connection to another origin is
        closed to make room; when there is none, wait for one to be released or closed."""
        limit = self.limits.max_connections or float("inf")  # 0: no bound, as aiohttp's
        while len(self.open) + self.opening >= limit:
            conn = self.take(origin)
            if conn is not None:
                return conn
            if self._close_one_idle():
                continue
            waiter = self.loop.create_future()
            self._slot_waiters.append(waiter)
            try:
                async with asyncio.timeout(timeout):
                    await waiter
            finally:
                if waiter in self._slot_waiters:
                    self._slot_waiters.remove(waiter)
        self.opening += 1
        return None

    def opened(self, conn: Connection) -> None:
        """A reserved slot became a connection."""
        self.opening -= 1
        self.open.add(conn)

    def abandoned(self) -> None:
        """A reserved slot's connect failed."""
        self.opening -= 1
        self._wake_one()

    def lost(self, conn: Connection) -> None:
        """Called by a connection when its socket is gone."""
        if conn in self.open:
            self.open.discard(conn)
            self._wake_one()

    def close_all(self) -> None:
        """Close every connection (the app stops)."""
        for conn in list(self.open):
            conn.close()
        self.idle.clear()
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None

    def _wake_one(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _close_one_idle(self) -> bool:
        oldest: Connection | None = None
        for stack in self.idle.values():
            while stack and stack[0].closed:
                stack.pop(0)
            if stack and (oldest is None or stack[0].idle_since < oldest.idle_since):
                oldest = stack[0]
        if oldest is None:
            return False
        self.idle[oldest.origin].remove(oldest)
        oldest.close()
        self.open.discard(oldest)  # its slot is free now; connection_lost finds it gone
        return True

    def _expire(self) -> None:
        self._sweep = None
        cutoff = self.loop.time() - self.limits.keepalive_s
        left = False
        for origin, stack in list(self.idle.items()):
            keep = [c for c in stack if not c.closed and c.idle_since > cutoff]
            for conn in stack:
                if not conn.closed and conn.idle_since <= cutoff:
                    conn.close()
            if keep:
                self.idle[origin] = keep
                left = True
            else:
                del self.idle[origin]
        if left:
            self._sweep = self.loop.call_later(self.limits.keepalive_s / 2, self._expire)
