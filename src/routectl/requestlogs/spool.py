"""The spool: request records kept on local disk while the database is away, loaded when it is back.

A folder of JSON-lines files (the access-log records themselves, so `routectl logs load` reads
them too). Each writer appends to a file of its own, named after its process, and holds an
exclusive `flock` on it while it may still append; a file nobody holds (its writer moved on, or
died) can be claimed by any writer of the folder, which loads it and deletes it. Every file in the
folder together stays within `max_bytes`: records that would not fit are dropped and counted.
Loading is idempotent by request id, so a file loaded twice (a crash between the load and the
delete) adds no row twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

__all__ = ["Claimed", "Spool"]

_SUFFIX = ".jsonl"


@dataclass
class Claimed:
    """A spool file this writer holds the lock of: read it, load it, then `done()` deletes it."""

    path: Path
    handle: IO[bytes]

    def lines(self) -> Iterator[bytes]:
        self.handle.seek(0)
        yield from self.handle

    def done(self) -> None:
        """Loaded: delete the file, then let go of it."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.release()

    def release(self) -> None:
        """Not loaded (the database went away again): keep the file for a later claim."""
        self.handle.close()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


class Spool:
    """One writer's side of a spool folder."""

    def __init__(self, folder: str | Path, max_bytes: int) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes
        self._own: IO[bytes] | None = None
        self._own_path: Path | None = None

    def size(self) -> int:
        """Bytes held by every spool file in the folder."""
        total = 0
        with contextlib.suppress(FileNotFoundError):
            for entry in os.scandir(self.folder):
                if entry.name.endswith(_SUFFIX):
                    with contextlib.suppress(FileNotFoundError):
                        total += entry.stat().st_size
        return total

    def append(self, records: list[dict[str, Any]]) -> tuple[int, int]:
        """Add records to this writer's file, within the folder's bound; (kept, dropped)."""
        if not records:
            return 0, 0
        room = self.max_bytes - self.size()
        lines = []
        for record in records:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
            if len(line) > room:
                break
            room -= len(line)
            lines.append(line)
        if lines:
            handle = self._open_own()
            handle.write(b"".join(lines))
            handle.flush()
            os.fsync(handle.fileno())  # a crash of the machine keeps what was spooled
        return len(lines), len(records) - len(lines)

    def _open_own(self) -> IO[bytes]:
        if self._own is None:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            name = f"requests-{os.getpid()}-{uuid.uuid4().hex[:12]}{_SUFFIX}"
            path = self.folder / name
            handle = path.open("ab")
            fcntl.flock(handle, fcntl.LOCK_EX)  # a new file: nobody else holds it
            self._own, self._own_path = handle, path
        return self._own

    def close_own(self) -> None:
        """Stop appending to this writer's file (a later spell of spooling starts a new one);
        from now on any writer, this one included, may claim it."""
        handle, self._own, self._own_path = self._own, None, None
        if handle is not None:
            handle.close()

    def pending(self) -> bool:
        """Whether the folder holds a spool file (this writer's own, or anyone's)."""
        with contextlib.suppress(FileNotFoundError):
            return any(e.name.endswith(_SUFFIX) for e in os.scandir(self.folder))
        return False

    def claim(self) -> Iterator[Claimed]:
        """Spool files nobody holds, oldest first, each locked by this writer as it is yielded."""
        try:
            paths = sorted(
                (p for p in self.folder.iterdir() if p.name.endswith(_SUFFIX)),
                key=lambda p: (_mtime(p), p.name),
            )
        except FileNotFoundError:  # no folder: nothing was ever spooled
            return
        for path in paths:
            if path == self._own_path:
                continue
            try:
                handle = path.open("rb")
            except FileNotFoundError:  # loaded and deleted by another writer meanwhile
                continue
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its writer still appends, or another writer is loading it
                handle.close()
                continue
            if not path.exists():  # deleted between our open and our lock: already loaded
                handle.close()
                continue
            yield Claimed(path, handle)
