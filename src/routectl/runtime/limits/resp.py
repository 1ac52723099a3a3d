"""A lean Redis client for the limiter's hot path: one asyncio connection, RESP parsed by hiredis.

The Redis backend sends one command at a time (a batch's EVALSHA) and nothing else, so all it
needs is a socket, the command's bytes and the reply: redis-py's asyncio client costs about
150 µs of CPU per call around that (a pool checkout under a condition, a timeout scope, retries,
the command's encoding per argument, its event hooks), which a request alone at a time pays in
full. Here a call is a write, a future and a timer.

What it speaks: `redis://[[user]:password@]host[:port][/db]` (AUTH and SELECT once connected),
EVALSHA with a fall back to EVAL when the server does not know the script (a restarted Redis:
EVAL also caches it again). Commands may be pipelined: replies come back in the order sent, each
to its future. A reply that does not come within the timeout fails its call and drops the
connection (a stalled server or a half-open socket; the next call connects afresh), and so does a
lost connection, for every call waiting on it. Other URLs (TLS, unix sockets) and a missing
hiredis use redis-py (`RedisBackend`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

__all__ = ["LeanRedis", "RespError", "pack", "supports"]


class RespError(Exception):
    """An error reply from Redis (a script error, NOSCRIPT, a refused AUTH) or a broken stream."""


def supports(url: str) -> bool:
    """True for the URLs this client speaks: plain TCP `redis://`."""
    return urlsplit(url).scheme == "redis"


def _bulk(value: bytes | str | int) -> bytes:
    data = value if isinstance(value, bytes) else str(value).encode()
    return b"$%d\r\n%b\r\n" % (len(data), data)


def pack(*args: bytes | str | int) -> bytes:
    """A command as RESP: an array of bulk strings."""
    return b"*%d\r\n%b" % (len(args), b"".join([_bulk(a) for a in args]))


_MAX_NAMES = 10_000  # encoded key names kept (a table's counters: callers x limits)


class _Names(dict[str, bytes]):
    """Key names as RESP bulk strings, encoded once: a batch names the same few keys again and
    again (a caller's counters)."""

    def __missing__(self, name: str) -> bytes:
        if len(self) >= _MAX_NAMES:
            self.clear()
        encoded = self[name] = _bulk(name)
        return encoded


class _Connection(asyncio.Protocol):
    """One connection: writes commands, hands each reply to the oldest waiting future."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader()
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's: no subclass of it

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.close(RespError(f"redis protocol error: {exc}"))
                return
            if reply is False:  # no complete reply yet
                return
            if not self.waiting:
                self.close(RespError("redis sent a reply nobody asked for"))
                return
            future = self.waiting.popleft()
            if not future.done():  # else: its caller gave up (timeout), the reply is dropped
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("redis closed the connection"))

    def _fail(self, exc: Exception) -> None:
        if self.lost is None:
            self.lost = exc
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)

    def send(self, data: bytes) -> asyncio.Future[Any]:
        """Write a command; the future gets its reply."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.lost is not None or self.transport is None:
            future.set_exception(self.lost or ConnectionResetError("not connected"))
            return future
        self.waiting.append(future)
        self.transport.write(data)
        return future

    def close(self, exc: Exception) -> None:
        """Drop the connection; every waiting call fails with `exc`."""
        self._fail(exc)
        if self.transport is not None:
            self.transport.abort()


def _expire(future: asyncio.Future[Any], conn: _Connection) -> None:
    if not future.done():
        future.set_exception(TimeoutError("redis did not answer in time"))
        conn.close(TimeoutError("an earlier call timed out"))


class LeanRedis:
    """Commands to one Redis over one connection, (re)made when needed; each reply bounded by
    `timeout_s` (and the connection, its AUTH and SELECT, by another `timeout_s`)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"the lean client speaks redis:// only, not {parts.scheme}://")
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 6379
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        path = parts.path.strip("/")
        self.db = int(path) if path else 0
        self.timeout_s = timeout_s
        self._conn: _Connection | None = None
        self._connecting: asyncio.Future[_Connection] | None = None
        self._names = _Names()
        self._evalsha: dict[str, bytes] = {}  # sha -> `EVALSHA <sha>`, encoded

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and conn.lost is None:
            return conn
        if self._connecting is not None:  # another call is connecting: wait for the same one
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = connecting = loop.create_future()
        conn = None
        try:
            async with asyncio.timeout(self.timeout_s):
                _, conn = await loop.create_connection(_Connection, self.host, self.port)
                if self.password is not None:
                    who = [self.username] if self.username else []
                    self._check(await conn.send(pack("AUTH", *who, self.password)))
                if self.db:
                    self._check(await conn.send(pack("SELECT", self.db)))
        except BaseException as exc:
            if conn is not None:
                conn.close(ConnectionResetError("the connection could not be set up"))
            self._connecting = None
            connecting.set_exception(exc if isinstance(exc, Exception) else ConnectionError())
            connecting.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        self._conn = conn
        self._connecting = None
        connecting.set_result(conn)
        return conn

    @staticmethod
    def _check(reply: Any) -> Any:
        if isinstance(reply, hiredis.ReplyError):
            raise RespError(str(reply))
        return reply

    async def call(self, data: bytes) -> Any:
        """Send a packed command (`pack`) and return its reply; RespError for an error reply,
        TimeoutError when none came in time, OSError when the connection is lost."""
        conn = self._conn
        if conn is None or conn.lost is not None:
            conn = await self._connection()
        future = conn.send(data)
        timer = asyncio.get_running_loop().call_later(self.timeout_s, _expire, future, conn)
        try:
            reply = await future
        finally:
            timer.cancel()
        if isinstance(reply, hiredis.ReplyError):
            raise RespError(str(reply))
        return reply

    async def evalsha(self, sha: str, script: str, keys: list[str], args: list[str | int]) -> Any:
        """Run a script by its SHA1; when the server does not have it, by its text (EVAL caches
        it for the next EVALSHA)."""
        verb = self._evalsha.get(sha) or self._evalsha.setdefault(
            sha, _bulk("EVALSHA") + _bulk(sha)
        )
        try:
            return await self.call(self.script_command(verb, keys, args))
        except RespError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.call(self.script_command(_bulk("EVAL") + _bulk(script), keys, args))

    def script_command(self, verb: bytes, keys: list[str], args: list[str | int]) -> bytes:
        """`pack(EVALSHA|EVAL, sha|script, len(keys), *keys, *args)`'s bytes, given the first two
        words encoded (`verb`): the key names encoded once per client (a batch names the same
        few keys again and again), one bytes formatting for the rest."""
        names = self._names
        return b"*%d\r\n%b%b%b%b" % (
            3 + len(keys) + len(args),
            verb,
            _bulk(len(keys)),
            b"".join([names[k] for k in keys]),
            b"".join([_bulk(a) for a in args]),
        )

    async def aclose(self) -> None:
        """Close the connection (calls still waiting fail)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close(ConnectionResetError("client closed"))
            with contextlib.suppress(Exception):
                await asyncio.sleep(0)  # let the transport's close run
