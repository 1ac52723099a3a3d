"""The access log's handler: lines are buffered in memory and written by a background thread.

A request's log line costs a list append on the event loop; the write (and its flush) happens
off the loop every `interval` seconds, sooner when `max_lines` have piled up, and on close.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from typing import TextIO

__all__ = ["BufferedLineHandler"]


class BufferedLineHandler(logging.Handler):
    """Collects formatted records and writes them in batches from a daemon thread."""

    def __init__(self, stream: TextIO, interval: float = 0.2, max_lines: int = 1000) -> None:
        super().__init__()
        self.stream = stream
        self.interval = interval
        self.max_lines = max_lines
        # deque: append and popleft are atomic, so the writer never takes the handler's lock
        # (logging.shutdown holds it while it flushes)
        self._lines: deque[str] = deque()
        self._closed = False
        self._pid = 0  # the writer thread is per process: threads do not survive a fork
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lines = deque()  # lines queued before a fork belong to the parent
        self._write_lock = threading.Lock()  # one batch at a time, in order
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="routectl-access-log", daemon=True)
        self._thread.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue one line (called with the handler lock held)."""
        if self._pid != os.getpid():
            self._start()
        try:
            # no formatter: the message is the line (the access log's JSON), no Formatter pass
            line = record.getMessage() if self.formatter is None else self.format(record)
        except Exception:  # pragma: no cover - logging's own contract: never raise
            self.handleError(record)
            return
        self._lines.append(line)
        if len(self._lines) >= self.max_lines:
            self._wake.set()

    def flush(self) -> None:
        """Write every queued line now."""
        with self._write_lock:
            queued = self._lines
            lines = [queued.popleft() for _ in range(len(queued))]
            if not lines:
                return
            try:
                self.stream.write("\n".join(lines) + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # the stream went away (closed pipe at shutdown)
                pass

    def close(self) -> None:
        """Stop the writer thread and write what is left."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=5)
        self.flush()
        super().close()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()
