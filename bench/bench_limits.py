"""Issue 15's rows alone: routectl (1 worker, provider/model) with and without the bench user's
limits counted in Redis, measured in turns like `make bench` (same harness, same pinning), and
the ratios. A minute or two instead of `make bench`'s quarter of an hour: the loop for work on
the limits' hot path.

With --callgrind instead: instructions per request (valgrind's callgrind, which other load on
the machine does not move) of `routectl serve` with and without the limits, c=1, one keep-alive
connection, the way bench/profile_stages.py measures its ladder (Redis runs natively on CPU 1).

Usage: python bench/bench_limits.py [--reps 3] [--duration 1] [--no-wrk]
       python bench/bench_limits.py --callgrind [--n 1000] [--warm 200] [--stream]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import report, targets
from harness.procs import ProcessGroup, free_port
from harness.report import Row
from harness.runner import CLIENT_CPU, GATEWAY_CPU, Bench, Settings, _chat_url
from harness.targets import Route, Target


def run(settings: Settings) -> list[Row]:
    """Start the fake upstream, both servers and Redis; measure; stop everything."""
    work = Path(tempfile.mkdtemp(prefix="routectl-bench-limits-"))
    group = ProcessGroup(work)
    bench = Bench(settings, group, work)
    try:
        bench.upstream_port = free_port()
        upstream = f"http://127.0.0.1:{bench.upstream_port}"
        targets.start_upstream(group, bench.upstream_port, bench.cpus(CLIENT_CPU))
        config = targets.write_bench_config(work, upstream + "/v1")
        table = targets.compile_config(config, work / "generated")
        auth = {"Authorization": f"Bearer {targets.BENCH_KEY}"}
        routes = [Route(report.PROVIDER_MODEL, "fake/gpt-4o-mini")]
        port = free_port()
        proc = targets.start_routectl(group, table, port, 1, bench.cpus(GATEWAY_CPU))
        both = [Target(report.ROUTECTL_1W, _chat_url(port), auth, routes, proc)]
        bench._start_limited(config, auth, both)
        if bench.notes:
            raise RuntimeError("; ".join(bench.notes))
        for target in both:
            bench._warm(target)
        bench.measure(both, settings.reps)
    finally:
        group.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return bench.rows


def callgrind(n: int, warm: int, stream: bool) -> list[str]:
    """Instructions per request of both servers at c=1 (profile_stages' ladder method)."""
    import profile_stages as ps

    ps.STREAM = stream
    work = Path(tempfile.mkdtemp(prefix="routectl-bench-limits-cg-"))
    group = ProcessGroup(work)
    mode = "SSE" if stream else "non-streaming"
    lines = [f"| server ({mode}, c=1) | instructions/req |", "|---|--:|"]
    try:
        up_port = free_port()
        targets.start_upstream(group, up_port, CLIENT_CPU)
        upstream = f"http://127.0.0.1:{up_port}"
        config = targets.write_bench_config(work, upstream + "/v1")
        table = targets.compile_config(config, work / "generated")
        limited = config.with_name("routing.limits.yaml")
        limited.write_text(config.read_text() + targets.LIMITS_YAML)
        limited_table = targets.compile_config(limited, work / "generated-limits")
        redis_port = free_port()
        targets.start_redis(group, redis_port, CLIENT_CPU)
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        bench_key = {"Authorization": f"Bearer {targets.BENCH_KEY}"}

        def serve(path: Path, *extra: str) -> Callable[[int], list[str]]:
            return lambda port: [
                str(targets.ROUTECTL),
                "serve",
                *("--table", str(path), "--host", "127.0.0.1", "--port", str(port), *extra),
            ]

        rungs = [
            ps.Rung(report.ROUTECTL_1W, serve(table), "/readyz", bench_key),
            ps.Rung(
                report.ROUTECTL_LIMITS,
                serve(limited_table, "--redis-url", redis_url),
                "/readyz",
                bench_key,
            ),
        ]
        for rung in rungs:
            instr = ps._instructions(group, rung, work, warm, n)
            lines.append(f"| {rung.label} | {instr:,.0f} |")
            print(lines[-1], file=sys.stderr, flush=True)
    finally:
        group.stop_all()
        shutil.rmtree(work, ignore_errors=True)
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row (best kept)")
    parser.add_argument("--duration", type=int, default=1, help="seconds per repetition")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument("--callgrind", action="store_true", help="instructions/req at c=1")
    parser.add_argument("--n", type=int, default=1000, help="--callgrind: requests measured")
    parser.add_argument("--warm", type=int, default=200, help="--callgrind: requests before")
    parser.add_argument("--stream", action="store_true", help="--callgrind: SSE requests")
    args = parser.parse_args()
    if args.callgrind:
        print("\n".join(callgrind(args.n, args.warm, args.stream)))
        return 0
    settings = Settings(
        duration_s=float(max(1, args.duration)),
        reps=args.reps,
        ttfc_s=0.5,
        warmup_s=1.0,
        budget_s=600.0,
        other_limit_s=0.0,
        quick=False,
        use_wrk=not args.no_wrk,
        litellm=False,
        peers=False,
    )
    rows = run(settings)
    print(report.markdown_table(rows))
    for line in report.limits_lines(rows):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
