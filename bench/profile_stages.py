"""Where the CPU of one request goes: a ladder of servers, and routectl's own stages, in instructions.

Instruction counts (valgrind's callgrind) do not move with other load on the machine, unlike time.

1. The ladder: each server below is started under callgrind and sent W, then (in a second run)
   W + N sequential keep-alive requests (non-streaming chat, c=1) from an uninstrumented client;
   (Ir(W+N) - Ir(W)) / N is the server's instructions per request. The rungs differ by one thing:
   raw asyncio protocol (bench/fake_upstream.py answering itself) -> aiohttp's low-level server ->
   a web.Application with a router -> the passthrough (aiohttp's client, or `--client lean`) ->
   routectl serve (its client: the one `serve` uses by default, or `--upstream-client aiohttp`).
   Next to each, the CPU µs per request of the same server run natively (N requests, /proc
   utime + stime of its process tree): a time, so it moves with the machine's load.
2. routectl's own stages, in process, under callgrind with the client requests of valgrind's
   callgrind.h (a 20-line C shim compiled with the system's cc when one exists): each stage is run
   K times between CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS; the dump's total over K is its
   cost. Stages: authenticate, parse the body, resolve + plan, encode the upstream request,
   decode + stamp + re-encode the answer, the access-log line, metrics and latency bookkeeping.

Usage: python bench/profile_stages.py [--n 1000] [--skip-ladder] [--skip-stages] [--only NAME...]
Takes several minutes (callgrind runs code about 50x slower). Not part of `make bench`.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import targets
from harness.callgrind import build_shim, total_instructions
from harness.procs import CLK_TCK, ProcessGroup, cpu_ticks, free_port, wait_http

BENCH = Path(__file__).resolve().parent
ROUTECTL = targets.ROUTECTL


@dataclass
class Rung:
    label: str
    argv: Callable[[int], list[str]]  # port -> argv
    ready: str  # path polled until it answers
    headers: dict[str, str]
    model: str = "fake/gpt-4o-mini"


def _rungs(upstream: str, table: Path, model: str) -> list[Rung]:
    py = sys.executable
    up_key = {"Authorization": f"Bearer {targets.UPSTREAM_KEY}"}
    bench_key = {"Authorization": f"Bearer {targets.BENCH_KEY}"}

    def passthrough(client: str) -> Callable[[int], list[str]]:
        return lambda port: [
            py,
            str(BENCH / "passthrough.py"),
            *("--port", str(port), "--upstream", upstream, "--api-key", targets.UPSTREAM_KEY),
            *("--client", client),
        ]

    def routectl(*extra: str) -> Callable[[int], list[str]]:
        return lambda port: [
            str(ROUTECTL),
            "serve",
            *("--table", str(table), "--host", "127.0.0.1", "--port", str(port), *extra),
        ]

    fake = [py, str(BENCH / "fake_upstream.py"), "--api-key", targets.UPSTREAM_KEY, "--port"]
    ladder = [py, str(BENCH / "ladder_servers.py")]
    return [
        Rung("raw asyncio protocol (fake upstream)", lambda p: [*fake, str(p)], "/healthz", up_key),
        Rung(
            "aiohttp low-level server",
            lambda p: [*ladder, "lowlevel", "--port", str(p)],
            "/",
            {},
        ),
        Rung("aiohttp Application + router", lambda p: [*ladder, "app", "--port", str(p)], "/", {}),
        Rung("passthrough, aiohttp client", passthrough("aiohttp"), "/", {}),
        Rung("passthrough, lean client", passthrough("lean"), "/", {}),
        Rung(
            "routectl, aiohttp client",
            routectl("--upstream-client", "aiohttp"),
            "/readyz",
            bench_key,
            model,
        ),
        Rung(
            "routectl, lean client",
            routectl("--upstream-client", "lean"),
            "/readyz",
            bench_key,
            model,
        ),
    ]


STREAM = False  # --stream: SSE requests (the rungs that cannot answer them are left out)


def _drive(port: int, rung: Rung, n: int) -> None:
    body = targets.request_body(rung.model, STREAM)
    expect = b"[DONE]" if STREAM else b'"choices"'
    headers = {"Content-Type": "application/json", **rung.headers}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for _ in range(n):
            conn.request("POST", "/v1/chat/completions", body, headers)
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or expect not in data:
                raise RuntimeError(f"{rung.label}: HTTP {resp.status} {data[:200]!r}")
    finally:
        conn.close()


def _start(group: ProcessGroup, rung: Rung, port: int, valgrind: Path | None) -> int:
    argv = rung.argv(port)
    if valgrind is not None:
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={valgrind}", *argv]
    proc = group.start(rung.label.split()[0], argv, "0", env=targets.runtime_env())
    wait_http(f"http://127.0.0.1:{port}{rung.ready}", proc, 300 if valgrind else 60, rung.headers)
    return proc.pid


def _instructions(group: ProcessGroup, rung: Rung, work: Path, warm: int, n: int) -> float:
    counts = []
    for i, total in enumerate((warm, warm + n)):
        out = work / f"cg.{len(group.procs)}.{i}.out"
        port = free_port()
        _start(group, rung, port, out)
        _drive(port, rung, total)
        proc = group.procs[-1]
        group.stop(proc, grace_s=120)  # callgrind writes its file at exit
        counts.append(total_instructions(out))
    return (counts[1] - counts[0]) / n


def _cpu_us(group: ProcessGroup, rung: Rung, warm: int, n: int) -> float:
    port = free_port()
    pid = _start(group, rung, port, None)
    _drive(port, rung, warm)
    before = cpu_ticks(pid)
    _drive(port, rung, n)
    used = cpu_ticks(pid) - before
    group.stop(group.procs[-1])
    return used / CLK_TCK * 1e6 / n


def ladder(args: argparse.Namespace, work: Path) -> list[str]:
    group = ProcessGroup(work)
    lines = [
        f"| server ({'SSE' if STREAM else 'non-streaming'}, c=1, one keep-alive connection) "
        "| instructions/req | "
        "CPU µs/req (time) |",
        "|---|--:|--:|",
    ]
    try:
        up_port = free_port()
        targets.start_upstream(group, up_port, "1")
        upstream = f"http://127.0.0.1:{up_port}"
        config = targets.write_bench_config(work, upstream + "/v1")
        table = targets.compile_config(config, work / "generated")
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {1})  # the driver beside the upstream, off the server's CPU
        for rung in _rungs(upstream, table, args.model):
            if args.only and not any(o in rung.label for o in args.only):
                continue
            if STREAM and rung.label.startswith("aiohttp"):  # they answer JSON only
                continue
            t0 = time.monotonic()
            instr = _instructions(group, rung, work, args.warm, args.n)
            cpu = _cpu_us(group, rung, args.warm, args.cpu_n)
            lines.append(f"| {rung.label} | {instr:,.0f} | {cpu:,.0f} |")
            print(lines[-1], f"({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    finally:
        group.stop_all()
    return lines


# ---------------------------------------------------------------- routectl's stages in process


def stages(args: argparse.Namespace, work: Path) -> list[str]:
    lib = build_shim(work)
    if lib is None:
        return ["- stages not measured: no C compiler or valgrind/callgrind.h here"]
    config = targets.write_bench_config(work, "http://127.0.0.1:9/v1")
    table = targets.compile_config(config, work / "generated")
    out = work / "stages.out"
    argv = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        str(BENCH / "stage_costs.py"),
        str(table),
        str(lib),
        str(args.k),
    ]
    env = targets.runtime_env()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=1800, env=env)
    if result.returncode != 0:
        return [f"- stages failed: {result.stderr.strip()[-800:]}"]
    names = result.stdout.split()
    lines = ["| routectl stage (in process) | instructions/req |", "|---|--:|"]
    dumps = sorted(work.glob("stages.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    for name, dump in zip(names, dumps, strict=False):
        lines.append(f"| {name.replace('_', ' ')} | {total_instructions(dump) / args.k:,.0f} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="requests measured per callgrind run")
    parser.add_argument("--warm", type=int, default=200, help="requests before (both runs)")
    parser.add_argument("--cpu-n", type=int, default=5000, help="requests of the native CPU run")
    parser.add_argument("--k", type=int, default=2000, help="iterations per in-process stage")
    parser.add_argument("--only", nargs="*", help="ladder rungs whose label holds one of these")
    parser.add_argument("--skip-ladder", action="store_true")
    parser.add_argument("--skip-stages", action="store_true")
    parser.add_argument("--stream", action="store_true", help="SSE requests in the ladder")
    parser.add_argument(
        "--model",
        default="fake/gpt-4o-mini",
        help="what routectl's rungs are asked for (e.g. collection/bench-rr, collection/bench-lu)",
    )
    args = parser.parse_args()
    global STREAM
    STREAM = args.stream
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: apt-get install valgrind", file=sys.stderr)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # through the finally: stop children
    work = Path(tempfile.mkdtemp(prefix="profile-stages-"))
    load = os.getloadavg()
    report = [f"Load average at start: {load[0]:.2f}", ""]
    try:
        if not args.skip_ladder:
            report += [*ladder(args, work), ""]
        if not args.skip_stages:
            report += stages(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
