"""`routectl serve` as a subprocess: SIGHUP reload under load, refused bad tables, import hygiene."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import KEYS, make_table

from routectl.table import dump_table

ROUTECTL = str(Path(sys.executable).with_name("routectl"))
LU = "  lu:\n    scope: system\n    strategy: least_used\n    members: [{model: echo/e1}, {model: echo/e2}]\n"
EXTRA = "  extra:\n    scope: system\n    strategy: priority\n    members: [{model: echo/e2}]\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def request(
    port: int, method: str, path: str, body: dict[str, Any] | None = None
) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, payload, {"Authorization": f"Bearer {KEYS['carol']}"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheader("x-routectl-table") or "", data


def wait_ready(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert proc.poll() is None, "routectl serve exited"
        try:
            if request(port, "GET", "/readyz")[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("routectl serve did not become ready")


@pytest.mark.e2e
@pytest.mark.slow
def test_sighup_reload_under_load_without_a_failed_request(tmp_path: Path) -> None:
    table_a = make_table(collections=LU)
    table_b = make_table(collections=LU + EXTRA)
    raw_a, sha_a = dump_table(table_a)
    raw_b, sha_b = dump_table(table_b)
    path = tmp_path / "routing_table.json"
    path.write_bytes(raw_a)
    port = free_port()
    log_path = tmp_path / "serve.log"
    log_file = log_path.open("wb")  # a file, not a pipe: one log line per request would fill a pipe
    proc = subprocess.Popen(
        [ROUTECTL, "serve", "--table", str(path), "--port", str(port)],
        stdout=log_file,
        stderr=log_file,
    )
    try:
        wait_ready(port, proc)
        hello = {"model": "collection/lu", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(4):
            assert request(port, "POST", "/v1/chat/completions", hello)[0] == 200
        results: list[tuple[int, str]] = []
        stop = threading.Event()

        def load() -> None:
            body = {"model": "auto(free)", "messages": [{"role": "user", "content": "hi"}]}
            while not stop.is_set():
                status, sha, _ = request(port, "POST", "/v1/chat/completions", body)
                results.append((status, sha))

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.4)
        path.write_bytes(b'{"sha256": "0", "format": 1}')  # a bad table: refused, old keeps serving
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.4)
        write_atomically(path, raw_b)
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.6)
        stop.set()
        for w in workers:
            w.join(10)
        statuses = Counter(status for status, _ in results)
        assert statuses == {200: len(results)} and len(results) > 20
        shas = [sha for _, sha in results]
        assert shas[0] == sha_a and shas[-1] == sha_b
        assert set(shas) == {sha_a, sha_b}
        assert (
            request(port, "POST", "/v1/chat/completions", {**hello, "model": "collection/extra"})[0]
            == 200
        )
        # least-used counters of members that survived the reload carried over
        _, _, data = request(port, "GET", "/api/user/model-collections/lu")
        assert [m["usage"] for m in json.loads(data)["models"]] == [2, 2]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        log_file.close()
    log = log_path.read_text()
    assert "reload refused" in log
    assert f"routing table reloaded: {sha_a} -> {sha_b}" in log
    assert "key-carol" not in log


@pytest.mark.e2e
def test_serve_refuses_a_tampered_table(tmp_path: Path) -> None:
    raw, _ = dump_table(make_table())
    path = tmp_path / "t.json"
    path.write_bytes(raw.replace(b'"echo/e1"', b'"echo/e9"', 1))
    proc = subprocess.run(
        [ROUTECTL, "serve", "--table", str(path), "--port", str(free_port())],
        capture_output=True,
        timeout=20,
    )
    assert proc.returncode == 1
    assert b"hash mismatch" in proc.stderr


def test_runtime_never_imports_the_compiler() -> None:
    code = (
        "import sys, routectl.runtime.app, routectl.commands.serve, routectl.cli\n"
        "bad = [m for m in ('yaml', 'jsonschema', 'jinja2', 'pydantic', 'routectl.compiler') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
