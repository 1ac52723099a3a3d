"""`routectl serve --workers N`: N processes, each listening on the shared port (SO_REUSEPORT)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import make_table
from test_serve import ROUTECTL, free_port, request, wait_ready

from routectl.table import dump_table

pytestmark = pytest.mark.e2e

LU = "  lu:\n    scope: system\n    strategy: least_used\n    members: [{model: echo/e1}, {model: echo/e2}]\n"


def listening_sockets(port: int) -> int:
    """Sockets in LISTEN state bound to 127.0.0.1:port, read from the kernel's table."""
    wanted = f"0100007F:{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":  # 0A = TCP_LISTEN
            count += 1
    return count


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(p) for p in out.stdout.split()]


@contextmanager
def serving(
    tmp_path: Path, table: bytes, workers: int = 2
) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`routectl serve --workers N` on `table` (process, port, table path); stopped afterwards.

    Its temporary files go under `tmp_path/tmp` (TMPDIR), apart from every other process's."""
    path = tmp_path / "routing_table.json"
    path.write_bytes(table)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
    port = free_port()
    argv = [ROUTECTL, "serve", "--table", str(path), "--port", str(port), "--workers", str(workers)]
    with (tmp_path / "serve.log").open("wb") as log_file:
        proc = subprocess.Popen(argv, stdout=log_file, stderr=log_file, env=env)
        try:
            yield proc, port, path
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def wait_for_listeners(port: int, n: int) -> None:
    """wait_ready proves one worker; give the others their moment to bind."""
    for _ in range(50):
        if listening_sockets(port) == n:
            return
        time.sleep(0.1)


def test_two_workers_share_the_port_serve_and_stop_together(tmp_path: Path) -> None:
    raw, sha = dump_table(make_table(collections=LU))
    with serving(tmp_path, raw) as (proc, port, _):
        wait_ready(port, proc)
        workers = children_of(proc.pid)
        assert len(workers) == 2
        wait_for_listeners(port, 2)
        assert listening_sockets(port) == 2
        body = {"model": "collection/lu", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(20):  # a new connection each time, so the kernel spreads them
            status, table_hash, _ = request(port, "POST", "/v1/chat/completions", body)
            assert (status, table_hash) == (200, sha)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert all(not Path(f"/proc/{w}").exists() for w in workers)


def test_a_sighup_while_workers_start_reloads_instead_of_killing(tmp_path: Path) -> None:
    # a deploy script: start, recompile, `kill -HUP` at once - the workers are forked but do not
    # serve yet (building the app, binding the port); the default action would end them all
    raw_a, _ = dump_table(make_table(collections=LU))
    raw_b, sha_b = dump_table(make_table())
    with serving(tmp_path, raw_a) as (proc, port, path):
        deadline = time.monotonic() + 20
        while len(children_of(proc.pid)) < 2:  # forked, not yet serving
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        path.write_bytes(raw_b)
        proc.send_signal(signal.SIGHUP)
        wait_ready(port, proc)
        for _ in range(50):  # every worker ends up on the new table
            hashes = {request(port, "GET", "/healthz", None)[1] for _ in range(8)}
            if hashes == {sha_b}:
                break
            time.sleep(0.1)
        assert hashes == {sha_b}
        assert proc.poll() is None


@pytest.mark.slow
def test_metrics_count_every_workers_requests(tmp_path: Path) -> None:
    raw, _ = dump_table(make_table(collections=LU))
    with serving(tmp_path, raw) as (proc, port, _):
        wait_ready(port, proc)
        wait_for_listeners(port, 2)
        body = {"model": "collection/lu", "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(20):  # a new connection each time: the kernel spreads them over both
            assert request(port, "POST", "/v1/chat/completions", body)[0] == 200
        time.sleep(1.5)  # each worker publishes its snapshot every second
        counts = set()
        for _ in range(8):  # each scrape reaches one worker or the other: all answer the sum
            status, _, text = request(port, "GET", "/metrics")
            assert status == 200
            chat_lines = [
                line
                for line in text.decode().splitlines()
                if line.startswith("routectl_requests_total{")
                and 'route="/v1/chat/completions"' in line
            ]
            counts.add(sum(float(line.rsplit(" ", 1)[1]) for line in chat_lines))
        assert counts == {20.0}
        assert list((tmp_path / "tmp").glob("routectl-metrics-*"))  # the shared folder exists
    assert not list((tmp_path / "tmp").glob("routectl-metrics-*"))  # and is removed at exit


def test_a_worker_that_dies_is_logged_and_replaced(tmp_path: Path) -> None:
    raw, sha = dump_table(make_table(collections=LU))
    with serving(tmp_path, raw) as (proc, port, _):
        wait_ready(port, proc)
        wait_for_listeners(port, 2)
        before = children_of(proc.pid)
        assert len(before) == 2
        victim = before[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while True:  # the supervisor forks a replacement (after a pause if it died young)
            now = children_of(proc.pid)
            if len(now) == 2 and victim not in now:
                break
            assert time.monotonic() < deadline, f"no replacement: {now}"
            time.sleep(0.05)
        wait_for_listeners(port, 2)
        assert listening_sockets(port) == 2  # the new worker serves on the shared port too
        for _ in range(20):
            assert request(port, "GET", "/healthz")[:2] == (200, sha)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    log = (tmp_path / "serve.log").read_text()
    assert f"(pid {victim}) was killed by SIGKILL; starting a new one" in log


def test_workers_stop_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    raw, _ = dump_table(make_table(collections=LU))
    with serving(tmp_path, raw) as (proc, port, _):
        wait_ready(port, proc)
        wait_for_listeners(port, 2)
        workers = children_of(proc.pid)
        proc.kill()  # no SIGTERM to forward: the workers notice on their own
        proc.wait()
        deadline = time.monotonic() + 20
        while listening_sockets(port) or any(running(w) for w in workers):
            assert time.monotonic() < deadline, "orphaned workers still serve"
            time.sleep(0.1)
    assert "supervisor (pid" in (tmp_path / "serve.log").read_text()


def running(pid: int) -> bool:
    """Alive and not a zombie waiting for whoever adopted it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
