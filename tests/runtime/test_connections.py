"""Client connections over real sockets: header and body timeouts, keep-alive idle, the connection
cap (also as `routectl serve` derives it from the descriptor limit), and a declared oversized body
refused before it is read. Timeouts are shortened here; `serve` uses the SPEC's 30/30/75 s."""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from conftest import ENV, KEYS, LoopThread, make_table
from test_serve import ROUTECTL, free_port, wait_ready

from routectl.runtime.app import create_app
from routectl.runtime.connections import ServerLimits
from routectl.runtime.server import listen
from routectl.table import dump_table

pytestmark = pytest.mark.e2e

Listen = Callable[..., int]
WAIT = 10.0  # generous: the longest any answer below may take on a loaded machine


@pytest.fixture
def serve_app(loop_thread: LoopThread) -> Iterator[Listen]:
    """Start an app on 127.0.0.1 through the same listen() as `routectl serve`; its port."""
    runners: list[web.AppRunner] = []

    def start(limits: ServerLimits, max_body_bytes: int = 10 * 1024 * 1024) -> int:
        app = create_app(make_table(), environ=ENV, max_body_bytes=max_body_bytes)
        runner, port = loop_thread.run(listen(app, "127.0.0.1", 0, limits))
        runners.append(runner)
        bound: int = port
        return bound

    yield start
    for runner in runners:
        loop_thread.stop(runner)


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (socket.timeout if it never does)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def body_of(answer: bytes) -> dict[str, object]:
    body: dict[str, object] = json.loads(answer.partition(b"\r\n\r\n")[2])
    return body


def test_headers_trickled_past_the_header_timeout_get_408(serve_app: Listen) -> None:
    port = serve_app(ServerLimits(header_timeout=0.5, body_timeout=5, keepalive_timeout=30))
    with connect(port) as sock:
        started = time.monotonic()
        # a byte every 0.1 s keeps the connection busy but the headers never complete in time:
        # the timeout runs from a request's first byte, not from the last one
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa":
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # closed by the server: expected once the deadline passed
                break
            time.sleep(0.1)
        answer = read_until_closed(sock)
    assert status_of(answer) == 408
    assert body_of(answer)["error"]["code"] == "request_timeout"  # type: ignore[index]
    assert b"Connection: close" in answer
    assert time.monotonic() - started >= 0.5


def test_a_stalled_body_gets_408_and_a_slow_one_does_not(serve_app: Listen) -> None:
    port = serve_app(ServerLimits(header_timeout=5, body_timeout=0.6, keepalive_timeout=30))
    body = json.dumps({"model": "echo/e1", "messages": [{"role": "user", "content": "hi"}]})
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEYS['carol']}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(port) as sock:  # half the body, then nothing
        sock.sendall(head + body[:10].encode())
        answer = read_until_closed(sock)
    assert status_of(answer) == 408
    assert "body" in body_of(answer)["error"]["message"]  # type: ignore[index]
    with connect(port) as sock:  # the whole body, slower than the timeout but never stalling
        sock.sendall(head)
        for i in range(0, len(body), 8):
            sock.sendall(body[i : i + 8].encode())
            time.sleep(0.2)
        answer = sock.recv(65536)
    assert status_of(answer) == 200


def test_an_idle_keep_alive_connection_is_closed(serve_app: Listen) -> None:
    port = serve_app(ServerLimits(header_timeout=5, body_timeout=5, keepalive_timeout=0.5))
    with connect(port) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = sock.recv(65536)
        assert status_of(first) == 200 and b"Connection: close" not in first
        started = time.monotonic()
        assert read_until_closed(sock) == b""  # closed quietly, no second answer
    # deadlines are checked every tick (0.125 s here) against the clock of the last tick, so the
    # close may come up to one tick before 0.5 s after the client's own timestamp
    assert time.monotonic() - started >= 0.5 - 0.125


def test_connections_over_the_cap_get_503_until_one_closes(serve_app: Listen) -> None:
    port = serve_app(ServerLimits(max_connections=4))
    held = [connect(port) for _ in range(4)]
    try:
        for sock in held:  # each is served (and so really counted) before the next one
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status_of(sock.recv(65536)) == 200
        with connect(port) as extra:
            answer = read_until_closed(extra)
        assert status_of(answer) == 503
        assert body_of(answer)["error"]["code"] == "too_many_connections"  # type: ignore[index]
        assert b"Retry-After: 1" in answer
        held.pop().close()
        deadline = time.monotonic() + WAIT
        while True:  # the server notices the close on its next read
            with connect(port) as again:
                again.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = read_until_closed(again)
            if status_of(answer) == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status_of(answer) == 200
        assert b"routectl_connections_refused_total 1.0" in answer
    finally:
        for sock in held:
            sock.close()


def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(serve_app: Listen) -> None:
    port = serve_app(ServerLimits(), max_body_bytes=1000)
    with connect(port) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
        )  # and not a byte of the 50 MB: the answer must not wait for them
        answer = sock.recv(65536)
    assert status_of(answer) == 413
    assert body_of(answer)["error"]["code"] == "request_too_large"  # type: ignore[index]
    assert b"x-routectl-table" in answer


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))


def test_serve_caps_connections_below_its_descriptor_limit(tmp_path: Path) -> None:
    # 200 descriptors: (200 - 64 reserved) // 2 = 68 client connections, the rest for upstreams
    path = tmp_path / "routing_table.json"
    path.write_bytes(dump_table(make_table())[0])
    port = free_port()
    with (tmp_path / "serve.log").open("wb") as log:
        proc = subprocess.Popen(
            [ROUTECTL, "serve", "--table", str(path), "--port", str(port)],
            stdout=log,
            stderr=log,
            preexec_fn=_low_fd_limit,
        )
        held: list[socket.socket] = []
        try:
            wait_ready(port, proc)
            for _ in range(68):
                sock = connect(port)
                held.append(sock)
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert status_of(sock.recv(65536)) == 200
            with connect(port) as extra:
                assert status_of(read_until_closed(extra)) == 503
            assert proc.poll() is None  # the process itself is fine
        finally:
            for sock in held:
                sock.close()
            proc.terminate()
            assert proc.wait(timeout=WAIT) == 0
