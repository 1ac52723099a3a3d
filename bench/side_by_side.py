"""Two versions of routectl, side by side: CPU µs per request of each, in alternating turns.

A change that takes a few per cent of a request's instructions away is smaller than what this
machine's other load moves between two `make bench` runs. Here both versions serve the same
table and fake upstream at once (each on the gateway CPU, one at a time under load), and the
turns alternate (A B, then B A, ...), so what the machine does meanwhile falls on both.

    git archive <commit> src | tar -x -C /tmp/old
    .venv/bin/python bench/side_by_side.py /tmp/old/src src --rounds 3

Each version runs as `routectl serve` from the venv with its `src` first on PYTHONPATH. Prints
each turn's CPU µs per request (/proc, the server's process tree) and the ratio of the medians,
second / first. About 3 s per turn; 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import targets
from harness.load import Driver
from harness.procs import CLK_TCK, ProcessGroup, cpu_ticks, free_port, wait_http
from harness.runner import CLIENT_CPU, GATEWAY_CPU


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a src folder (the version measured first)")
    parser.add_argument("second", type=Path, help="another src folder")
    parser.add_argument("--modes", default="stream:1,json:64,stream:64,json:1")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--model", default="fake/gpt-4o-mini")
    args = parser.parse_args()
    modes = [
        (kind == "stream", int(conc))
        for kind, conc in (m.split(":") for m in args.modes.split(","))
    ]
    work = Path(tempfile.mkdtemp(prefix="side-by-side-"))
    group = ProcessGroup(work)
    driver = Driver(work, CLIENT_CPU)
    auth = {"Authorization": f"Bearer {targets.BENCH_KEY}"}
    try:
        up = free_port()
        targets.start_upstream(group, up, CLIENT_CPU)
        table = targets.compile_config(
            targets.write_bench_config(work, f"http://127.0.0.1:{up}/v1"), work / "generated"
        )
        servers = []
        for n, src in enumerate((args.first, args.second)):
            port = free_port()
            argv = [str(targets.ROUTECTL), "serve", "--table", str(table)]
            argv += ["--host", "127.0.0.1", "--port", str(port)]
            env = {**targets.runtime_env(), "PYTHONPATH": str(src.resolve())}
            proc = group.start(f"v{n}", argv, GATEWAY_CPU, env=env)
            wait_http(f"http://127.0.0.1:{port}/readyz", proc, 60, auth)
            servers.append((proc, f"http://127.0.0.1:{port}/v1/chat/completions"))
        cpu: dict[tuple[bool, int, int], list[float]] = {}
        for r in range(args.rounds):
            for stream, conc in modes:
                body = targets.request_body(args.model, stream)
                for n in (0, 1) if r % 2 == 0 else (1, 0):
                    proc, url = servers[n]
                    before = cpu_ticks(proc.pid)
                    result = driver.load(url, body, auth, conc, args.seconds)
                    used = cpu_ticks(proc.pid) - before
                    per = used / CLK_TCK * 1e6 / max(1, result.requests)
                    cpu.setdefault((stream, conc, n), []).append(per)
        for stream, conc in modes:
            a, b = cpu[(stream, conc, 0)], cpu[(stream, conc, 1)]
            ratio = statistics.median(b) / statistics.median(a)
            print(
                f"{'SSE' if stream else 'JSON'} c={conc}: first {[round(x) for x in a]} "
                f"second {[round(x) for x in b]} µs/request; median second/first {ratio:.3f}"
            )
    finally:
        group.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
