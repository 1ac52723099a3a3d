"""`routectl serve` processes for tests: start, stream, stop; and a ConfigMap-like table folder."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conftest import ENV, KEYS
from test_serve import ROUTECTL, free_port, wait_ready

__all__ = ["ConfigMapDir", "Served", "open_stream", "readyz", "serving", "stream_rest"]


@dataclass
class Served:
    """A running `routectl serve`."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serving(
    table: Path, log: Path, *args: str, env: Mapping[str, str] | None = None
) -> Iterator[Served]:
    """`routectl serve --table TABLE ARGS` on a free port, ready; stopped (then killed) after."""
    port = free_port()
    argv = [ROUTECTL, "serve", "--table", str(table), "--port", str(port), *args]
    environ = {**os.environ, **ENV, **(env or {})}
    with log.open("wb") as out:  # a file, not a pipe: a pipe nobody reads would fill up
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=environ)
        try:
            wait_ready(port, proc)
            yield Served(proc, port, log)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/readyz")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def open_stream(
    port: int, model: str, who: str = "carol"
) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, bytes]:
    """Start a streamed chat completion; the connection, the response and its first event."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(body),
        {"Authorization": f"Bearer {KEYS[who]}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    first = b""
    while not first.startswith(b"data:"):
        first = resp.readline()
    return conn, resp, first


def stream_rest(resp: http.client.HTTPResponse) -> list[bytes]:
    """The remaining events of a stream, up to its end."""
    events = []
    while line := resp.readline():
        if line.startswith(b"data:"):
            events.append(line.strip())
    return events


class ConfigMapDir:
    """A folder laid out the way kubelet mounts a ConfigMap, updated the way kubelet updates it:
    `routing_table.json -> ..data/routing_table.json`, `..data -> ..<version>/`; a new version is
    written into a new folder and `..data` is swapped to it with one rename."""

    def __init__(self, root: Path, name: str = "routing_table.json") -> None:
        self.root = root
        self.name = name
        self.version = 0
        root.mkdir(parents=True, exist_ok=True)

    @property
    def path(self) -> Path:
        return self.root / self.name

    def publish(self, data: bytes) -> None:
        self.version += 1
        folder = self.root / f"..2026_12_01_00_00_{self.version:02d}.{os.getpid()}"
        folder.mkdir()
        (folder / self.name).write_bytes(data)
        tmp = self.root / "..data_tmp"
        tmp.symlink_to(folder.name)
        old = os.readlink(self.root / "..data") if (self.root / "..data").is_symlink() else None
        os.rename(tmp, self.root / "..data")  # the atomic swap
        if not self.path.is_symlink():
            self.path.symlink_to(f"..data/{self.name}")
        if old is not None:  # kubelet removes the previous version once swapped
            for f in (self.root / old).iterdir():
                f.unlink()
            (self.root / old).rmdir()
