"""SIGTERM drains `routectl serve` (SPEC §5): /readyz 503 at once, late requests served, in-flight
streams finish, exit 0; the drain ends at --drain-seconds whatever is still in flight. And
`--table` read from ROUTECTL_TABLE, a flag winning over it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ENV, KEYS, FakeUpstream, make_table
from procs import open_stream, readyz, serving, stream_rest
from test_serve import LU, ROUTECTL, free_port, wait_ready

from routectl.table import dump_table

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHUNKS = 40  # streamed 0.05 s apart by the fake upstream's "slow" action: a 2 s stream


def long_stream(fake: FakeUpstream, action: str = "slow") -> None:
    first, content, *_, finish, done = fake.stream_chunks
    fake.stream_chunks = [first, *[content] * CHUNKS, finish, done]
    fake.script["m1"] = [action]


def chat(port: int) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = {"model": "echo/e1", "messages": [{"role": "user", "content": "late"}]}
    conn.request(
        "POST",
        "/v1/chat/completions",
        json.dumps(body),
        {"Authorization": f"Bearer {KEYS['carol']}", "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp


def test_sigterm_mid_stream_drains_then_exits_0(tmp_path: Path, fake: FakeUpstream) -> None:
    table = tmp_path / "routing_table.json"
    table.write_bytes(dump_table(make_table(fake.port))[0])
    long_stream(fake)
    with serving(table, tmp_path / "serve.log", "--drain-seconds", "20") as s:
        conn, resp, _ = open_stream(s.port, "fake/m1")
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)  # the signal is handled by the event loop, between two chunks
        status, body = readyz(s.port)
        assert (status, body["status"]) == (503, "draining")  # the Service stops sending
        late = chat(s.port)  # sent anyway (endpoints lag behind readiness): still served
        assert late.status == 200
        assert late.getheader("Connection") == "close"  # and its client reconnects elsewhere
        events = stream_rest(resp)
        conn.close()
        assert events[-1] == b"data: [DONE]"
        assert len(events) == CHUNKS + 2  # nothing of the stream was lost
        assert s.proc.wait(timeout=15) == 0
    log = s.log_text()
    assert "stopping: /readyz answers 503; 1 request(s) in flight" in log
    assert "drained: no request in flight" in log


def test_the_drain_ends_at_drain_seconds(tmp_path: Path, fake: FakeUpstream) -> None:
    table = tmp_path / "routing_table.json"
    table.write_bytes(dump_table(make_table(fake.port))[0])
    long_stream(fake, "stall")  # two chunks, then 30 s of nothing
    with serving(table, tmp_path / "serve.log", "--drain-seconds", "1") as s:
        conn, resp, _ = open_stream(s.port, "fake/m1")
        started = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 15  # long before the upstream's 30 s stall ends
        stream_rest(resp)  # cut: the connection was closed
        conn.close()
    assert "drain deadline: 1 request(s) still in flight are cut" in s.log_text()


def test_the_table_comes_from_routectl_table_unless_the_flag_names_one(tmp_path: Path) -> None:
    from_env, from_flag = tmp_path / "env.json", tmp_path / "flag.json"
    raw_env, sha_env = dump_table(make_table())
    raw_flag, sha_flag = dump_table(make_table(collections=LU))
    from_env.write_bytes(raw_env)
    from_flag.write_bytes(raw_flag)
    env = {**os.environ, **ENV, "ROUTECTL_TABLE": str(from_env)}
    for argv, sha in (([], sha_env), (["--table", str(from_flag)], sha_flag)):
        port = free_port()
        with (tmp_path / "serve.log").open("wb") as log:
            proc = subprocess.Popen(
                [ROUTECTL, "serve", "--port", str(port), *argv], stdout=log, stderr=log, env=env
            )
            try:
                wait_ready(port, proc)
                assert readyz(port)[1]["table"] == sha
            finally:
                proc.terminate()
                assert proc.wait(timeout=15) == 0
