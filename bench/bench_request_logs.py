"""The request_logs sink's cost: `routectl serve` with and without `--log-database-url`, side by side.

An echo collection (answered inside the gateway, so the gateway's CPU is all there is and the
sink's share of it is the largest it can be), one worker pinned to CPU 0, the load generator
(wrk, else the harness's Python one) and the database on CPU 1, c=32, non-streaming. The two servers are measured
in turns (off, on, off, on, ...) and the medians compared (goal: the sink within 5 % req/s). The
database is a throwaway embedded PostgreSQL with the generated schema; after the runs every
request answered with the sink on must be a row. Prints a Markdown table; 127.0.0.1 only; every
process it starts is stopped. Run: `.venv/bin/python bench/bench_request_logs.py` (also part of
`make bench`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from harness.load import Driver  # noqa: E402
from harness.procs import TASKSET, ProcessGroup, wait_http  # noqa: E402
from harness.targets import ROUTECTL  # noqa: E402

from routectl.compiler import build_table  # noqa: E402
from routectl.compiler.db.apply import execute_file  # noqa: E402
from routectl.compiler.db.outputs import sql_outputs  # noqa: E402
from routectl.table import dump_table  # noqa: E402

KEY = "rk-bench-logs"
CONC = 32


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


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> int:
    quick = os.environ.get("BENCH_QUICK") == "1"
    rounds, seconds = (2, 2.0) if quick else (4, 3.0)
    work = Path(tempfile.mkdtemp(prefix="routectl-bench-logs-"))
    group = ProcessGroup(work)
    server = None
    try:
        url = os.environ.get("ROUTECTL_BENCH_DATABASE_URL")
        if not url:
            (work / "pg").mkdir()
            url, server = _embedded_postgres(work / "pg")
        pin = "0" if TASKSET and (os.cpu_count() or 1) > 1 else None
        load_cpu = "1" if pin else None
        if server is not None and load_cpu is not None:
            # the database is another machine in production: here it shares the load
            # generator's CPU, never the gateway's (its backends inherit the postmaster's)
            os.sched_setaffinity(server.server.get_pid(), {1})  # type: ignore[attr-defined]
        table = build_table(text=_config())
        with psycopg.connect(url, autocommit=True) as conn:
            execute_file(conn, sql_outputs(None, table, {})["seed.sql"].decode())
            conn.execute("TRUNCATE request_logs")
        path = work / "routing_table.json"
        path.write_bytes(dump_table(table)[0])
        ports = {"off": 18931, "on": 18932}
        pids: dict[str, int] = {}
        for name, port in ports.items():
            argv = [str(ROUTECTL), "serve", "--table", str(path), "--port", str(port)]
            if name == "on":
                argv += ["--log-database-url", url, "--log-spool-dir", str(work / "spool")]
            proc = group.start(f"serve-{name}", argv, pin, env=dict(os.environ))
            wait_http(f"http://127.0.0.1:{port}/readyz", proc, 60)
            pids[name] = proc.popen.pid
        driver = Driver(work, load_cpu)
        body = b'{"model":"collection/rr","messages":[{"role":"user","content":"hello there"}]}'
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        rps: dict[str, list[float]] = {"off": [], "on": []}
        p50: dict[str, list[float]] = {"off": [], "on": []}
        cpu_us: dict[str, list[float]] = {"off": [], "on": []}  # gateway CPU per request
        sent_on = 0
        for port in ports.values():  # warm-up
            driver.load(f"http://127.0.0.1:{port}/v1/chat/completions", body, headers, CONC, 1.0)
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM request_logs").fetchone()
            warm_rows = int(row[0]) if row else 0
        for r in range(rounds):
            for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
                before = _cpu_s(pids[name])
                result = driver.load(
                    f"http://127.0.0.1:{ports[name]}/v1/chat/completions",
                    body,
                    headers,
                    CONC,
                    seconds,
                )
                if name == "on":  # the writer finishes its batches: their CPU counts too
                    time.sleep(1.0)
                spent = _cpu_s(pids[name]) - before
                cpu_us[name].append(spent / max(1, result.requests) * 1e6)
                rps[name].append(result.rps)
                p50[name].append(result.p50_ms)
                if name == "on":
                    sent_on += result.requests
                _log(f"round {r + 1} sink {name}: {result.rps:.0f} req/s, {result.errors} errors")
        # every request answered with the sink on is a row (the writer catches up within seconds)
        deadline = time.monotonic() + 60
        rows = -1
        while time.monotonic() < deadline:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute("SELECT count(*) FROM request_logs").fetchone()
                rows = (int(row[0]) if row else 0) - warm_rows
            if rows >= sent_on:
                break
            time.sleep(0.5)
        off, on = statistics.median(rps["off"]), statistics.median(rps["on"])
        ratio = on / off if off else float("nan")
        cpu_off, cpu_on = statistics.median(cpu_us["off"]), statistics.median(cpu_us["on"])
        capacity = cpu_off / cpu_on if cpu_on else float("nan")
        print(
            "| routectl serve, echo collection, c=32, 1 worker | req/s (median) | p50 ms (median)"
            " | gateway CPU us per request (median) |"
        )
        print("|---|---:|---:|---:|")
        for label, key in (("sink off", "off"), ("sink on (`--log-database-url`)", "on")):
            print(
                f"| {label} | {statistics.median(rps[key]):,.0f} | "
                f"{statistics.median(p50[key]):.2f} | {statistics.median(cpu_us[key]):.1f} |"
            )
        print()
        verdict = "met" if capacity >= 0.95 else "NOT met"
        print(
            f"- gateway capacity with the sink (CPU per request, off / on): {capacity:.3f}; "
            f"goal >= 0.95: {verdict}"
        )
        print(
            f"- req/s on / off: {ratio:.3f} ({rounds} alternating rounds of {seconds:g} s, "
            f"{driver.tool}); with 2 CPUs the database shares the load generator's CPU, so this "
            "ratio also counts the database's inserts slowing the load generator"
        )
        print(f"- rows written for the sink-on runs: {rows:,} of {sent_on:,} requests answered")
        return 0
    finally:
        group.stop_all()
        if server is not None:
            server.close()  # type: ignore[attr-defined]
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
