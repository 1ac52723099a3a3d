"""The batched access log: whole JSON lines, in order, written late but never lost."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import KEYS, make_table
from test_serve import ROUTECTL, free_port, request, wait_ready

from routectl.runtime import accesslog
from routectl.runtime.accesslog import AccessLog
from routectl.table import dump_table


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_lines_wait_for_the_timer_then_come_in_order(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        log = AccessLog(fd, interval=0.05)
        for i in range(100):
            log.write({"n": i, "path": "/v1/chat/completions"})
        assert path.read_bytes() == b""  # nothing written on the request path
        await asyncio.sleep(0.2)
        assert _lines(path) == [{"n": i, "path": "/v1/chat/completions"} for i in range(100)]
    finally:
        os.close(fd)


async def test_a_full_buffer_is_written_at_once_and_close_writes_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        log = AccessLog(fd, interval=60, max_bytes=100)
        log.write({"n": 0, "pad": "x" * 40})
        assert path.read_bytes() == b""
        log.write({"n": 1, "pad": "x" * 40})  # over 100 bytes: written now, not in 60 s
        assert [line["n"] for line in _lines(path)] == [0, 1]
        log.write({"n": 2})
        log.close()  # what the app's cleanup does at shutdown
        assert [line["n"] for line in _lines(path)] == [0, 1, 2]
    finally:
        os.close(fd)


def test_each_write_holds_whole_lines_within_pipe_buf(monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []

    def fake_write(fd: int, data: memoryview) -> int:
        writes.append(bytes(data))
        return len(data)

    monkeypatch.setattr(os, "write", fake_write)  # the module calls os.write
    log = AccessLog(99, interval=60, max_bytes=10**9)
    records = [{"n": i, "pad": "y" * (i % 300)} for i in range(500)]
    for r in records:
        log._lines.append(json.dumps(r).encode() + b"\n")  # as write() would, without a loop
    log.flush()
    assert len(writes) > 1
    assert all(len(w) <= accesslog._PIPE_BUF and w.endswith(b"\n") for w in writes)
    assert [json.loads(line) for w in writes for line in w.splitlines()] == records


def test_without_a_descriptor_lines_go_to_the_logger(caplog: pytest.LogCaptureFixture) -> None:
    log = AccessLog()
    with caplog.at_level("INFO", logger="routectl.access"):
        log.write({"status": 200})
    assert [r.getMessage() for r in caplog.records if r.name == "routectl.access"] == [
        '{"status":200}'
    ]
    logging.getLogger("routectl.access").setLevel(logging.WARNING)
    try:
        assert not log.enabled
    finally:
        logging.getLogger("routectl.access").setLevel(logging.NOTSET)


@pytest.mark.e2e
def test_serve_writes_one_line_per_request_and_flushes_on_sigterm(tmp_path: Path) -> None:
    raw, sha = dump_table(make_table())
    table = tmp_path / "routing_table.json"
    table.write_bytes(raw)
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [ROUTECTL, "serve", "--table", str(table), "--port", str(port)],
            stdout=log_file,
            stderr=log_file,
        )
        try:
            wait_ready(port, proc)
            body = {"model": "auto(free)", "messages": [{"role": "user", "content": "hi"}]}
            for _ in range(5):
                assert request(port, "POST", "/v1/chat/completions", body)[0] == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
    text = log_path.read_text()
    access = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    chats = [a for a in access if a["path"] == "/v1/chat/completions"]
    assert len(chats) == 5 and len({a["request_id"] for a in chats}) == 5
    assert all(a["status"] == 200 and a["table"] == sha and a["caller"] == "carol" for a in chats)
    assert all(isinstance(a["ts"], float) and a["latency_ms"] >= 0 for a in chats)
    assert KEYS["carol"] not in text
