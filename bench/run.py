"""`make bench`: routectl side by side with the physical limit (a bare passthrough) and with LiteLLM.

Bounded in time (about 5 minutes; `--quick` about 2), 127.0.0.1 only. Starts the fake upstream, the
passthrough, `routectl serve` (1 and 2 workers) on bench/routing.bench.yaml compiled at bench time,
and LiteLLM when `make bench-peers` installed it; pins the gateways to CPU 0 and the upstream and
load generator to CPU 1; prints one Markdown table, ratio lines, the issue's goals checked, the
table-size figure, and the tables of bench/bench_compile.py and bench/bench_decisions.py if present.
Every process it starts is stopped at the end, also on Ctrl-C, SIGTERM or an error.
See docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from types import FrameType

from harness import report, targets
from harness.procs import TASKSET, ProcessGroup
from harness.runner import BIG_TABLE_COLLECTIONS, Bench, Settings

BENCH_DIR = Path(__file__).resolve().parent


def _machine(bench: Bench) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    s = bench.s
    tool = bench.driver.tool
    load = f"wrk {_wrk_version()}" if tool == "wrk" else "Python aiohttp load generator (no wrk)"
    pin = (
        "gateways on CPU 0, fake upstream + load generator on CPU 1 (taskset); 2 workers on CPUs 0-1"
        if TASKSET and bench.pin
        else "no pinning (taskset missing or one CPU)"
    )
    return [
        f"- {dt.datetime.now().isoformat(timespec='seconds')}; {os.cpu_count()} CPUs ({cpu}); "
        f"Linux {platform.release()}; Python {platform.python_version()}",
        f"- load: {load}, closed loop; each row is the best of {s.reps} x {s.duration_s:g} s, "
        "the side-by-side targets measured in turns; TTFC: sequential streaming requests on one "
        "raw keep-alive socket",
        f"- pinning: {pin}",
    ]


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "?"
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    words = (out.stdout + out.stderr).split()
    return words[1] if len(words) > 1 else "?"


def compose(bench: Bench, load: tuple[float, float]) -> str:
    """The whole report as Markdown."""
    routes = [r.label for r in targets.ROUTECTL_ROUTES]
    big = next((f for f in bench.figures if f.collections >= BIG_TABLE_COLLECTIONS), None)
    lines = ["## routectl benchmark", "", *_machine(bench)]
    lines.append(
        f"- load average at start / end: {load[0]:.2f} / {load[1]:.2f} "
        "(other work on the machine moves every figure)"
    )
    lines += ["", report.markdown_table(bench.rows), "", "Ratios (same run):", ""]
    lines += report.ratio_lines(bench.rows, routes) or ["- none: routectl was not measured"]
    lines += [
        "",
        "Goals of issue 16 (same run; ratios to the passthrough on aiohttp's client):",
        "",
    ]
    lines += report.lean_lines(bench.rows, routes)
    lines += ["", "Peers, scale-out and upstream client candidates (same run):", ""]
    lines += report.peer_lines(bench.rows) or ["- none measured"]
    lines += ["", "Goals of issue 6 (same run):", "", *report.goal_lines(bench.rows, routes, big)]
    messages = report.messages_lines(bench.rows, targets.MESSAGES_ROUTE.label)
    lines += ["", "Goal of issue 11, /v1/messages (same run):", "", *messages]
    lines += [
        "",
        "Issue 15, limits in Redis and affinity (same run):",
        "",
        *report.limits_lines(bench.rows),
    ]
    spread = [f"- {r.target}, {r.route}: {r.spread}" for r in bench.rows if r.spread]
    if spread:
        lines += ["", "Upstream requests per model during the json c=64 rows:", "", *spread]
    if bench.figures:
        lines += ["", "### Table size", "", report.table_size_markdown(bench.figures)]
    if bench.notes:
        lines += ["", "Notes:", "", *(f"- {n}" for n in bench.notes)]
    lines += ["", *bench.others]
    return "\n".join(lines) + "\n"


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the bench, always stop what it started, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about 2 minutes: one repetition")
    parser.add_argument(
        "--duration", type=int, default=1, help="seconds per repetition (wrk: whole)"
    )
    parser.add_argument("--reps", type=int, help="repetitions per row (default 3, --quick 1)")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    parser.add_argument("--no-peers", action="store_true", help="leave nginx and Portkey out")
    parser.add_argument(
        "--candidates",
        action="store_true",
        help="also the passthrough on the lean client and pyreqwest, and routectl on aiohttp's",
    )
    parser.add_argument("--results", type=Path, default=BENCH_DIR / "results")
    args = parser.parse_args(argv)
    settings = Settings(
        duration_s=float(max(1, args.duration)),
        reps=args.reps or (1 if args.quick else 3),
        ttfc_s=0.5 if args.quick else 1.5,
        warmup_s=1.0,
        budget_s=90.0 if args.quick else 300.0,  # the load rows, Portkey last: ~230 s here
        other_limit_s=20.0 if args.quick else 60.0,
        quick=args.quick,
        use_wrk=not args.no_wrk,
        litellm=not args.no_litellm,
        peers=not args.no_peers,
        candidates=args.candidates,
    )
    work = Path(tempfile.mkdtemp(prefix="routectl-bench-"))
    group = ProcessGroup(work)
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    load_start = os.getloadavg()[0]
    bench = Bench(settings, group, work)
    try:
        bench.run()
    except (KeyboardInterrupt, SystemExit):
        group.stop_all()
        shutil.rmtree(work, ignore_errors=True)
        print("interrupted; stopped every process the bench started", file=sys.stderr)
        return 130
    except BaseException:
        print(f"the bench failed; its processes' logs are in {work}", file=sys.stderr)
        raise
    finally:
        group.stop_all()
        signal.signal(signal.SIGTERM, previous)
    text = compose(bench, (load_start, os.getloadavg()[0]))
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    saved = args.results / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    saved.write_text(text)
    shutil.rmtree(work, ignore_errors=True)
    print(f"(saved to {saved})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
