"""The access log: one JSON line per request, never a key, written in batches off the request path.

`routectl serve` gives it a file descriptor (stderr): a request's line costs one `orjson.dumps`
and a list append; the lines are written by a timer on the event loop every `interval` seconds,
sooner when `max_bytes` have piled up, and on shutdown. Each write holds whole lines and at most
PIPE_BUF bytes, so the lines of several workers sharing one pipe never interleave mid-line.
Without a descriptor (an embedding application, the tests) each line goes to the
`routectl.access` logger, as a plain logging record.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
from typing import Any

import orjson

__all__ = ["AccessLog"]

_ACCESS = "routectl.access"
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)


class AccessLog:
    """Where the envelope sends each request's record."""

    def __init__(self, fd: int | None = None, *, interval: float = 0.2, max_bytes: int = 65536):
        self.fd = fd
        self.interval = interval
        self.max_bytes = max_bytes
        self.logger = logging.getLogger(_ACCESS)
        self._lines: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def enabled(self) -> bool:
        """False when nothing would be written (no descriptor and the logger is off)."""
        return self.fd is not None or self.logger.isEnabledFor(logging.INFO)

    def write(self, record: dict[str, Any]) -> None:
        """Log one request's record."""
        if self.fd is None:
            log = self.logger
            if log.isEnabledFor(logging.INFO):
                # makeRecord + handle: what .info() does, minus its caller lookup (a stack walk)
                line = orjson.dumps(record).decode()
                log.handle(log.makeRecord(_ACCESS, logging.INFO, "", 0, line, (), None))
            return
        line_bytes = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        self._lines.append(line_bytes)
        self._size += len(line_bytes)
        if self._size >= self.max_bytes:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on a loop: nothing would flush later
                self.flush()
                return
            self._timer = loop.call_later(self.interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> None:
        """Write every buffered line now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        lines, self._lines, self._size = self._lines, [], 0
        if not lines or self.fd is None:
            return
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > _PIPE_BUF:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write(b"".join(chunk))

    def _write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        except OSError:  # a closed or broken stderr must not take requests down with it
            pass

    def close(self) -> None:
        """Write what is left (the app's cleanup calls this)."""
        self.flush()
