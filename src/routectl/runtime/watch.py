"""`routectl serve --watch`: reload the table when its file changes, however it changes.

Polling, not inotify: a mounted ConfigMap is updated by kubelet swapping the `..data` symlink of
the mounted folder to a new timestamped folder, so the file named by `--table` is never written;
inotify on it sees nothing, and watching every link of the chain is fragile. `os.stat` follows
the chain: a new target is a new (device, inode), an in-place write a new size or mtime. One stat
per `interval` costs nothing measurable, and bounds the detection delay by `interval`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

__all__ = ["WATCH_INTERVAL", "TableWatcher"]

WATCH_INTERVAL = 1.0  # seconds: a change is picked up at most this long after it is made

_Signature = tuple[int, int, int, int, int] | None


def _signature(path: Path) -> _Signature:
    try:
        st = os.stat(path)  # follows symlinks: ConfigMap's file -> ..data -> ..<timestamp>/file
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class TableWatcher:
    """Calls `reload` (which verifies the file and refuses a bad one) when the file changes."""

    def __init__(
        self, path: str | Path, reload: Callable[[], bool], interval: float = WATCH_INTERVAL
    ) -> None:
        self.path = Path(path)
        self.reload = reload
        self.interval = interval
        # None until the first look, which reloads: a change made between the table's load at
        # startup and the watch's start is not missed (an unchanged table is a no-op)
        self.seen: _Signature | None = None
        self._first = True
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Look now, then every `interval` seconds (on the running loop)."""
        self._tick()

    def stop(self) -> None:
        """Stop looking."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self) -> None:
        sig = _signature(self.path)
        if self._first or sig != self.seen:
            self._first = False
            self.reload()  # logs and counts a refusal itself; the old table keeps serving
            # a file still being written changes while it is read: look again next time rather
            # than take the half-written state as seen
            if _signature(self.path) == sig:
                self.seen = sig
        self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)
