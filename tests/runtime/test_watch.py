"""TableWatcher on a real folder: a ConfigMap's `..data` swap, an in-place write, a vanished file.
(`routectl serve --watch` under load, on three replicas, is tests/runtime/test_rollout.py.)"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from procs import ConfigMapDir

from routectl.runtime.watch import TableWatcher

pytestmark = pytest.mark.e2e

INTERVAL = 0.02


async def settle(calls: list[bytes | None], n: int) -> None:
    """Wait until the watcher has reloaded n times (10 s at most), then a few intervals more."""
    deadline = time.monotonic() + 10
    while len(calls) < n and time.monotonic() < deadline:
        await asyncio.sleep(INTERVAL)
    await asyncio.sleep(INTERVAL * 5)


async def test_every_kind_of_change_is_seen_once(tmp_path: Path) -> None:
    cm = ConfigMapDir(tmp_path / "table")
    cm.publish(b"one")
    calls: list[bytes | None] = []

    def reload() -> bool:
        calls.append(cm.path.read_bytes() if cm.path.exists() else None)
        return True

    watcher = TableWatcher(cm.path, reload, interval=INTERVAL)
    watcher.start()
    try:
        await settle(calls, 1)
        assert calls == [b"one"]  # the first look reloads (a no-op when unchanged)
        cm.publish(b"two")  # kubelet's way: the file itself is never written
        await settle(calls, 2)
        assert calls == [b"one", b"two"]
        target = cm.path.resolve()
        target.write_bytes(b"tw0")  # in place, same size: the mtime tells
        os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
        await settle(calls, 3)
        assert calls[2:] == [b"tw0"]
        (cm.root / "..data").unlink()  # gone: reported once, not on every look
        await settle(calls, 4)
        assert calls[3:] == [None]
        cm.publish(b"three")
        await settle(calls, 5)
        assert calls[4:] == [b"three"]
    finally:
        watcher.stop()
