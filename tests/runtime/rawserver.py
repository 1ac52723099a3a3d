"""A scriptable raw HTTP/1.1 server on 127.0.0.1 for the lean client's conformance suite.

Each test hands it a script: an async function given the connection's reader/writer and the
server (for its counters). `read_request` reads one request off a connection; the server records
every request body and the number of connections it accepted, so a test can prove that a request
went exactly once and on which connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]


@dataclass
class Request:
    head: bytes
    body: bytes
    connection: int  # which accepted connection (1, 2, ...) it came on

    def header(self, name: bytes) -> bytes | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def header_count(self, name: bytes) -> int:
        return sum(
            1
            for line in self.head.split(b"\r\n")[1:]
            if line.partition(b":")[0].strip().lower() == name.lower()
        )


@dataclass
class RawServer:
    script: Script
    port: int = 0
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    closed_by_peer: int = 0  # connections the client closed (EOF seen by a script)
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat/completions"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.script(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # close() ends the scripts; ending quietly keeps asyncio from logging each
        finally:
            self._tasks.discard(task)
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> Request | None:
        """One request (head and Content-Length body); None at EOF before one starts."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.closed_by_peer += 1
            return None
        req = Request(head, b"", self.connections)
        length = req.header(b"content-length")
        if length:
            req.body = await reader.readexactly(int(length))
        self.requests.append(req)
        return req

    async def wait_eof(self, reader: asyncio.StreamReader, timeout: float = 5) -> bool:
        """True when the client closes the connection within `timeout` seconds."""
        try:
            data = await asyncio.wait_for(reader.read(1), timeout)
        except TimeoutError:
            return False
        if data == b"":
            self.closed_by_peer += 1
            return True
        return False

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def response(
    body: bytes = b'{"ok":true}',
    status: bytes = b"200 OK",
    headers: bytes = b"Content-Type: application/json\r\n",
) -> bytes:
    """A Content-Length response."""
    return b"HTTP/1.1 %s\r\n%sContent-Length: %d\r\n\r\n%s" % (status, headers, len(body), body)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)
