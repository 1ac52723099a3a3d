"""The upstream client candidates alone: CPU and instructions per request against the fake upstream.

For each client of bench/harness/clients.py, a child process (pinned to CPU 0) POSTs `--count`
chat requests at `--conc` concurrency to bench/fake_upstream.py (CPU 1), reads every answer whole
(JSON) or chunk by chunk (SSE), checks it, and reports its own CPU time (user + system, all
threads: pyreqwest's Tokio threads count). The children run in turns, `--reps` times; medians.
With `--callgrind`, each child also runs under `valgrind --tool=callgrind` twice (a short and a
long run) and the difference of the instruction counts over the difference of requests is the
instructions per request: a figure that other load on the machine does not move.

Usage: python bench/bench_clients.py [--count 20000] [--reps 3] [--callgrind]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.callgrind import total_instructions
from harness.clients import CLIENTS, open_client, pyreqwest_available
from harness.procs import ProcessGroup, free_port
from harness.targets import UPSTREAM_KEY, request_body, start_upstream

MODES = ("json", "stream")


async def _drive(client: str, mode: str, conc: int, count: int, url: URL) -> int:
    body = request_body("gpt-4o-mini", mode == "stream")
    headers = CIMultiDictProxy(
        CIMultiDict({"Content-Type": "application/json", "Authorization": f"Bearer {UPSTREAM_KEY}"})
    )
    left = count
    async with open_client(client) as post:

        async def worker() -> int:
            nonlocal left
            done = 0
            while left > 0:
                left -= 1
                reply = await post(url, body, headers, mode == "stream")
                try:
                    if mode == "json":
                        data = await reply.read()
                        ok = reply.status == 200 and b'"choices"' in data
                    else:
                        seen = b""
                        chunk = await reply.content.readany()
                        while chunk:
                            seen = seen[-16:] + chunk
                            chunk = await reply.content.readany()
                        ok = reply.status == 200 and b"[DONE]" in seen
                finally:
                    reply.release()
                if not ok:
                    raise RuntimeError(f"{client}: bad answer (status {reply.status})")
                done += 1
            return done

        results = await asyncio.gather(*(worker() for _ in range(conc)))
    return sum(results)


def _child(args: argparse.Namespace) -> None:
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    url = URL(args.upstream + "/v1/chat/completions")
    if args.warmup:
        loop.run_until_complete(_drive(args.child, args.mode, args.conc, args.warmup, url))
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    done = loop.run_until_complete(_drive(args.child, args.mode, args.conc, args.count, url))
    wall = time.perf_counter() - t0
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    print(json.dumps({"requests": done, "wall_s": wall, "cpu_s": cpu}))


def _child_argv(client: str, mode: str, conc: int, count: int, upstream: str) -> list[str]:
    return [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        client,
        "--mode",
        mode,
        "--conc",
        str(conc),
        "--count",
        str(count),
        "--upstream",
        upstream,
    ]


def _pin(argv: list[str], cpus: str | None) -> list[str]:
    if cpus is not None and shutil.which("taskset"):
        return ["taskset", "-c", cpus, *argv]
    return argv


def _run_child(argv: list[str]) -> dict[str, float]:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _instructions(argv: list[str], work: Path, tag: str) -> int:
    out_file = work / f"callgrind.{tag}.out"
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}", *argv]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1])
    return total_instructions(out_file)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, default="json", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=20000, help="requests per child run")
    parser.add_argument("--conc", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--clients", nargs="+", default=list(CLIENTS))
    parser.add_argument("--callgrind", action="store_true", help="instructions per request too")
    args = parser.parse_args()
    if args.child:
        args.conc = args.conc[0]
        _child(args)
        return 0
    clients = [c for c in args.clients if c != "pyreqwest" or pyreqwest_available() is None]
    notes = [] if clients == args.clients else [f"pyreqwest left out: {pyreqwest_available()}"]
    pin = (os.cpu_count() or 1) >= 2
    work = Path(tempfile.mkdtemp(prefix="bench-clients-"))
    group = ProcessGroup(work)
    rows: list[str] = []
    try:
        port = free_port()
        start_upstream(group, port, "1" if pin else None)
        upstream = f"http://127.0.0.1:{port}"
        for mode in MODES:
            for conc in args.conc:
                runs: dict[str, list[dict[str, float]]] = {c: [] for c in clients}
                for _ in range(args.reps):
                    for client in clients:
                        argv = _child_argv(client, mode, conc, args.count, upstream)
                        runs[client].append(_run_child(_pin(argv, "0" if pin else None)))
                for client in clients:
                    cpu = statistics.median(r["cpu_s"] / r["requests"] * 1e6 for r in runs[client])
                    rps = statistics.median(r["requests"] / r["wall_s"] for r in runs[client])
                    instr = "—"
                    if args.callgrind and conc == args.conc[0]:
                        small, large = 200, 1200
                        counts = []
                        for n in (small, large):
                            argv = _child_argv(client, mode, conc, n, upstream)
                            counts.append(_instructions(argv, work, f"{client}.{mode}.{n}"))
                        instr = f"{(counts[1] - counts[0]) / (large - small):,.0f}"
                    rows.append(
                        f"| {client} | {mode} | {conc} | {rps:,.0f} | {cpu:.1f} | {instr} |"
                    )
                    print(rows[-1], file=sys.stderr, flush=True)
    finally:
        group.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(
        f"Upstream clients alone, {args.count} requests per run, median of {args.reps} runs in turns"
    )
    print(f"(load average {load:.2f}; CPU = the client process's user + system time, all threads;")
    print(
        "instructions from callgrind: (Ir of 1,200 requests - Ir of 200) / 1,000, first conc only)"
    )
    print()
    print("| client | mode | conc | req/s | CPU µs/req | instructions/req |")
    print("|---|---|--:|--:|--:|--:|")
    print("\n".join(rows))
    for note in notes:
        print(f"\n- {note}")
    return 0


if __name__ == "__main__":
    orjson.dumps(None)  # imported for the harness's request bodies
    sys.exit(main())
