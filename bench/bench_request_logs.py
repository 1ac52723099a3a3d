"""The request_logs sink's cost: `routectl serve` with and without `--log-database-url`, side by side.

An echo collection (answered inside the gateway, so the gateway's CPU is all there is and the
sink's share of it is the largest it can be), one worker pinned to CPU 0, the load generator
(wrk, else the harness's Python one) and the database on CPU 1, c=32, non-streaming. The two servers are measured
in turns (off, on, off, on, ...) and the medians compared (goal: the sink within 5 % req/s). The
database is a throwaway embedded PostgreSQL with the generated schema; after the runs every
request answered with the sink on must be a row. Prints a Markdown table: req/s and gateway CPU per
request (all its threads, the writer's included) medians, their on/off ratios, and the database's
CPU per row. 127.0.0.1 only; every process it starts is stopped.

`--instructions` adds figures that do not move with other load on the machine (valgrind's
callgrind; minutes): the whole server's instructions per request with the sink off and on (N
sequential keep-alive requests between callgrind_control's zero and dump, per thread), and in
process the request path's share (the observer call) and the writer's per row at a busy worker's
batch size. Run: `.venv/bin/python bench/bench_request_logs.py [--instructions] [--no-load]` (also
part of `make bench`, without --instructions).
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import hashlib
import http.client
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import orjson
import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.callgrind import build_shim, total_instructions  # noqa: E402
from harness.load import Driver  # noqa: E402
from harness.procs import TASKSET, ProcessGroup, cpu_ticks, free_port, wait_http  # noqa: E402
from harness.targets import ROUTECTL  # noqa: E402

from routectl.compiler import build_table  # noqa: E402
from routectl.compiler.db.apply import execute_file  # noqa: E402
from routectl.compiler.db.outputs import sql_outputs  # noqa: E402
from routectl.requestlogs.sink import RequestLogSink  # noqa: E402
from routectl.table import dump_table  # noqa: E402

KEY = "rk-bench-logs"
CONC = 32
BODY = b'{"model":"collection/rr","messages":[{"role":"user","content":"hello there"}]}'
HEADERS = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
# rows per writer batch under callgrind: a busy worker's (the sink's BATCH_MAX), and about what
# the server under valgrind (slow) queues in the writer's 0.5 s
CG_BATCHES = (2000, 100)


def _config() -> str:
    digest = "sha256:" + hashlib.sha256(KEY.encode()).hexdigest()
    return f"""
version: 1
users:
  bench: {{display_name: Bench, api_keys: ["{digest}"]}}
providers:
  echo: {{api: echo}}
models:
  echo/a: {{context_window: 100000, pricing: {{input_per_mtok: 1, output_per_mtok: 2}}, trust_level: 50}}
  echo/b: {{context_window: 100000, pricing: {{input_per_mtok: 1, output_per_mtok: 2}}, trust_level: 50}}
connections:
  - {{id: platform-echo, owner: platform, provider: echo, models: [echo/a, echo/b]}}
collections:
  rr:
    scope: system
    strategy: round_robin
    members: [{{model: echo/a}}, {{model: echo/b}}]
"""


def _embedded_postgres(folder: Path) -> tuple[str, object]:
    """The test suite's embedded PostgreSQL (tests/db/conftest.py), on a folder of its own."""
    spec = importlib.util.spec_from_file_location(
        "routectl_db_conftest", BENCH_DIR.parent / "tests" / "db" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = module.StoppablePostgres(folder)
    return str(server.url), server


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads (the writer's included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _main_thread_cpu_s(pid: int) -> float:
    """User + system CPU seconds of the process's main thread: the event loop's."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _count_rows(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM request_logs").fetchone()
    return int(row[0]) if row else 0


def _wait_rows(url: str, at_least: int, timeout_s: float = 60.0) -> int:
    """The row count once it reaches `at_least` (the writer catches up within seconds)."""
    deadline = time.monotonic() + timeout_s
    rows = _count_rows(url)
    while rows < at_least and time.monotonic() < deadline:
        time.sleep(0.25)
        rows = _count_rows(url)
    return rows


def _metric(port: int, name: str) -> float:
    """The sum of a metric's samples on a server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{")
    )


def _db_pid(server: object | None) -> int | None:
    """The postmaster's pid (its backends are its children), for the database's CPU."""
    if server is None:
        return None
    pid: int = server.server.get_pid()  # type: ignore[attr-defined]
    return pid


def _serve_argv(name: str, table: Path, port: int, url: str, spool: Path) -> list[str]:
    argv = [str(ROUTECTL), "serve", "--table", str(table), "--port", str(port)]
    if name == "on":
        argv += ["--log-database-url", url, "--log-spool-dir", str(spool)]
    return argv


def _load_runs(
    work: Path, group: ProcessGroup, url: str, table: Path, db_pid: int | None, quick: bool
) -> None:
    """req/s and CPU per request, sink off and on, in alternating turns; the medians."""
    rounds, seconds = (2, 2.0) if quick else (4, 3.0)
    pin = "0" if TASKSET and (os.cpu_count() or 1) > 1 else None
    load_cpu = "1" if pin else None
    if db_pid is not None and load_cpu is not None:
        # the database is another machine in production: here it shares the load
        # generator's CPU, never the gateway's (its backends inherit the postmaster's)
        os.sched_setaffinity(db_pid, {1})
    ports = {"off": free_port(), "on": free_port()}
    pids: dict[str, int] = {}
    for name, port in ports.items():
        argv = _serve_argv(name, table, port, url, work / "spool")
        proc = group.start(f"serve-{name}", argv, pin, env=dict(os.environ))
        wait_http(f"http://127.0.0.1:{port}/readyz", proc, 60)
        pids[name] = proc.popen.pid
    driver = Driver(work, load_cpu)
    rps: dict[str, list[float]] = {"off": [], "on": []}
    p50: dict[str, list[float]] = {"off": [], "on": []}
    cpu_us: dict[str, list[float]] = {"off": [], "on": []}  # gateway CPU per request
    loop_us: dict[str, list[float]] = {"off": [], "on": []}  # of it, the event loop's thread
    other_us: dict[str, list[float]] = {"off": [], "on": []}  # the others: the sink's writer
    db_us: list[float] = []  # the database's CPU per row written (sink-on turns)
    rows_before = _count_rows(url)
    warm_on = 0
    for name, port in ports.items():  # warm-up
        url_ = f"http://127.0.0.1:{port}/v1/chat/completions"
        result = driver.load(url_, BODY, HEADERS, CONC, 1.0)
        if name == "on":
            warm_on = result.requests
    # the warm-up's rows are in before the turns start: a turn's rows are its own
    rows_start = _wait_rows(url, rows_before + warm_on)
    sent_on = 0
    for r in range(rounds):
        for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
            before = _cpu_s(pids[name])
            loop_before = _main_thread_cpu_s(pids[name])
            db_before = cpu_ticks(db_pid) if db_pid is not None else 0
            rows_turn = _count_rows(url) if name == "on" else 0
            result = driver.load(
                f"http://127.0.0.1:{ports[name]}/v1/chat/completions", BODY, HEADERS, CONC, seconds
            )
            if name == "on":  # the writer finishes its batches: their CPU counts too
                sent_on += result.requests
                rows_turn = _wait_rows(url, rows_start + sent_on, 20.0) - rows_turn
                if db_pid is not None and rows_turn > 0:
                    ticks = cpu_ticks(db_pid) - db_before
                    db_us.append(ticks / os.sysconf("SC_CLK_TCK") / rows_turn * 1e6)
            spent = _cpu_s(pids[name]) - before
            loop = _main_thread_cpu_s(pids[name]) - loop_before
            cpu_us[name].append(spent / max(1, result.requests) * 1e6)
            loop_us[name].append(loop / max(1, result.requests) * 1e6)
            other_us[name].append((spent - loop) / max(1, result.requests) * 1e6)
            rps[name].append(result.rps)
            p50[name].append(result.p50_ms)
            _log(
                f"round {r + 1} sink {name}: {result.rps:.0f} req/s, "
                f"{cpu_us[name][-1]:.1f} us CPU per request, {result.errors} errors"
            )
    # every request the sink-on server answered is a row, and only those: its own count of the
    # records it queued (wrk's count misses the answers in flight when its clock stops)
    queued = _metric(ports["on"], "routectl_request_logs_queued_total")
    rows = _wait_rows(url, rows_before + int(queued)) - rows_before
    dropped = _metric(ports["on"], "routectl_request_logs_dropped_total")
    spooled = _metric(ports["on"], "routectl_request_logs_spooled_total")
    off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
    ratio = on / off if off else float("nan")
    cpu_off, cpu_on = statistics.median(cpu_us["off"]), statistics.median(cpu_us["on"])
    capacity = cpu_off / cpu_on if cpu_on else float("nan")
    print(
        "| routectl serve, echo collection, c=32, 1 worker | req/s (median) | p50 ms (median)"
        " | gateway CPU us per request (median) | of it: event loop thread | other threads |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, key in (("sink off", "off"), ("sink on (`--log-database-url`)", "on")):
        print(
            f"| {label} | {statistics.median(rps[key]):,.0f} | "
            f"{statistics.median(p50[key]):.2f} | {statistics.median(cpu_us[key]):.1f} | "
            f"{statistics.median(loop_us[key]):.1f} | {statistics.median(other_us[key]):.1f} |"
        )
    print()
    verdict = "met" if capacity >= 0.95 else "NOT met"
    print(
        f"- gateway capacity with the sink (CPU per request, off / on): {capacity:.3f} "
        f"({cpu_on - cpu_off:+.1f} us per request); goal >= 0.95: {verdict}"
    )
    print(
        f"- req/s on / off: {ratio:.3f} ({rounds} alternating rounds of {seconds:g} s, "
        f"{driver.tool}; turns: off {', '.join(f'{x:.0f}' for x in rps['off'])}; "
        f"on {', '.join(f'{x:.0f}' for x in rps['on'])}); with 2 CPUs the database shares the "
        "load generator's CPU, so this ratio also counts the database's inserts slowing the "
        "load generator"
    )
    if db_us:
        print(
            "- database CPU per row written (median of the sink-on turns): "
            f"{statistics.median(db_us):.1f} us"
        )
    print(
        f"- rows: {rows:,} written for the {queued:,.0f} requests the sink-on server queued "
        f"(warm-up included; dropped {dropped:,.0f}, spooled {spooled:,.0f}; wrk counted "
        f"{sent_on + warm_on:,})"
    )


# ---------------------------------------------------------------- instruction counts (callgrind)


def _thread_totals(pattern: str) -> dict[int, int]:
    """Thread number (1: the main thread, the event loop's) -> instructions, of one dump."""
    out: dict[int, int] = {}
    for path in glob.glob(pattern):
        found = re.search(r"-(\d+)$", path)
        if found:
            out[int(found.group(1))] = total_instructions(path)
    return out


def _client_dumps(prefix: Path) -> dict[str, int]:
    """The dumps of CALLGRIND_DUMP_STATS_AT(name) (one process, threads together): name -> Ir."""
    out: dict[str, int] = {}
    for path in glob.glob(f"{prefix}.*"):
        text = Path(path).read_text(errors="replace")
        trigger = re.search(r"^desc: Trigger: Client Request: (.*)$", text, re.M)
        if trigger:
            out[trigger.group(1).strip()] = total_instructions(path)
    return out


def _sequential(port: int, n: int) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for _ in range(n):
            conn.request("POST", "/v1/chat/completions", BODY, HEADERS)
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200, answer.status
    finally:
        conn.close()


def _server_instructions(
    work: Path, group: ProcessGroup, url: str, table: Path, n: int
) -> tuple[dict[str, tuple[float, float]], bytes]:
    """Sink off/on -> (instructions per request: the event loop's thread, the other threads),
    under callgrind, N sequential keep-alive requests after a warm-up; and an access-log line."""
    out: dict[str, tuple[float, float]] = {}
    record = b""
    for name in ("off", "on"):
        port = free_port()
        prefix = work / f"cg-{name}"
        argv = [
            "valgrind",
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={prefix}",
            sys.executable,
            *_serve_argv(name, table, port, url, work / "spool"),
        ]
        proc = group.start(f"cg-serve-{name}", argv, None, env=dict(os.environ))
        wait_http(f"http://127.0.0.1:{port}/readyz", proc, 300)
        _sequential(port, max(20, n // 10))  # warm-up
        time.sleep(1.0)
        subprocess.run(
            ["callgrind_control", "-z", str(proc.popen.pid)], check=True, capture_output=True
        )
        _sequential(port, n)
        time.sleep(1.5)  # the writer's last batch
        subprocess.run(
            ["callgrind_control", "-d", str(proc.popen.pid)], check=True, capture_output=True
        )
        group.stop(proc)
        totals = _thread_totals(f"{prefix}.1-*")
        loop = totals.pop(1, 0)
        out[name] = (loop / n, sum(totals.values()) / n)
        if name == "off":
            lines = [x for x in proc.log_tail(200).splitlines() if x.startswith("{")]
            record = lines[-1].encode() if lines else b""
    return out, record


def _in_process_child(url: str, shim_path: str, record_path: str, spool: str) -> None:
    """Run under callgrind by _in_process: the observer call and the writer, between dumps."""
    shim = ctypes.CDLL(shim_path)
    base = orjson.loads(Path(record_path).read_bytes())
    sink = RequestLogSink(url, spool, queue_max=10**7, batch_max=max(CG_BATCHES))
    tag = uuid.uuid4().hex[:12]

    def records(label: str, n: int) -> list[dict[str, Any]]:
        return [dict(base, request_id=f"{tag}-{label}-{i}") for i in range(n)]

    for record in records("warm", 200):  # connected, the statement prepared
        sink.offer(record)
    for _ in range(6):
        sink._cycle()
        for record in records(f"warm{_}", 10):
            sink.offer(record)
    sink._cycle()
    assert sink.up, "the database did not take the warm-up rows"

    def noop(record: dict[str, Any]) -> None:
        pass

    batch = records("calls", 20_000)
    for name, observe in (("noop", noop), ("offer", sink.offer)):
        observers = [observe]
        shim.cg_zero()
        for record in batch:
            for o in observers:  # as the envelope calls its observers
                o(record)
        shim.cg_dump(name.encode())
    sink.queue.clear()

    for rows in CG_BATCHES:
        batches = [records(f"b{rows}-{k}", rows) for k in range(_CG_ROUNDS)]
        shim.cg_zero()
        for one in batches:
            shim.cg_toggle()  # not counted: queueing
            for record in one:
                sink.offer(record)
            shim.cg_toggle()
            sink._cycle()
        shim.cg_dump(f"write-{rows}".encode())
    assert sink.written >= _CG_ROUNDS * sum(CG_BATCHES), sink.written


_CG_ROUNDS = 3


def _in_process(work: Path, url: str, shim: Path, record: bytes) -> dict[str, float]:
    """Instructions: the observer call per request, the writer per row at each batch size."""
    (work / "record.json").write_bytes(record)
    prefix = work / "cg-inproc"
    argv = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={prefix}",
        sys.executable,
        __file__,
        "--cg-child",
        url,
        str(shim),
        str(work / "record.json"),
        str(work / "spool-inproc"),
    ]
    subprocess.run(argv, check=True, capture_output=True, timeout=1800)
    dumps = _client_dumps(prefix)
    out = {"offer": (dumps["offer"] - dumps["noop"]) / 20_000}
    for rows in CG_BATCHES:
        out[f"write-{rows}"] = dumps[f"write-{rows}"] / (_CG_ROUNDS * rows)
    return out


def _instructions(work: Path, group: ProcessGroup, url: str, table: Path, n: int) -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("- instructions: valgrind is not installed (apt-get install valgrind)")
        return
    shim = build_shim(work)
    if shim is None:
        print("- instructions: no C compiler or valgrind/callgrind.h for the in-process figures")
        return
    _log("instructions: the server under callgrind, sink off then on (minutes)")
    server, record = _server_instructions(work, group, url, table, n)
    _log("instructions: the observer call and the writer, in process")
    inproc = _in_process(work, url, shim, record)
    (off_loop, off_other), (on_loop, on_other) = server["off"], server["on"]
    off_total, on_total = off_loop + off_other, on_loop + on_other
    busy = inproc["offer"] + inproc[f"write-{CG_BATCHES[0]}"]
    print()
    print("| instructions (callgrind) | event loop thread | other threads | total per request |")
    print("|---|---:|---:|---:|")
    print(
        f"| sink off, {n} sequential requests | {off_loop:,.0f} | {off_other:,.0f} | "
        f"{off_total:,.0f} |"
    )
    print(
        f"| sink on, {n} sequential requests | {on_loop:,.0f} | {on_other:,.0f} | {on_total:,.0f} |"
    )
    print()
    print(
        f"- the sink's request-path share (the observer call, in process): {inproc['offer']:,.0f} "
        "instructions per request"
    )
    for rows in CG_BATCHES:
        print(
            f"- the writer per row, batches of {rows:,} rows (in process): "
            f"{inproc[f'write-{rows}']:,.0f} instructions"
        )
    print(
        f"- sink on / off under valgrind (its slow server makes batches of a few rows): "
        f"{on_total / off_total:.3f}; at a busy worker's batch size "
        f"(off + observer call + writer per row of {CG_BATCHES[0]:,}-row batches): "
        f"capacity {off_total / (off_total + busy):.3f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--instructions", action="store_true", help="add callgrind's figures")
    parser.add_argument("--no-load", action="store_true", help="skip the req/s and CPU turns")
    parser.add_argument("--n", type=int, default=300, help="requests under callgrind (300)")
    parser.add_argument("--cg-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cg_child:
        _in_process_child(*args.cg_child)
        return 0
    quick = os.environ.get("BENCH_QUICK") == "1"
    work = Path(tempfile.mkdtemp(prefix="routectl-bench-logs-"))
    group = ProcessGroup(work)
    server = None
    try:
        url = os.environ.get("ROUTECTL_BENCH_DATABASE_URL")
        if not url:
            (work / "pg").mkdir()
            url, server = _embedded_postgres(work / "pg")
        table = build_table(text=_config())
        with psycopg.connect(url, autocommit=True) as conn:
            execute_file(conn, sql_outputs(None, table, {})["seed.sql"].decode())
            conn.execute("TRUNCATE request_logs")
        path = work / "routing_table.json"
        path.write_bytes(dump_table(table)[0])
        if not args.no_load:
            _load_runs(work, group, url, path, _db_pid(server), quick)
        if args.instructions:
            group.stop_all()
            _instructions(work, group, url, path, args.n)
        return 0
    finally:
        group.stop_all()
        if server is not None:
            server.close()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
