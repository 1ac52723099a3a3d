"""`make bench`: routectl side by side with the physical limit (a bare passthrough) and with LiteLLM.

Bounded in time (about 4 minutes; `--quick` about 1), 127.0.0.1 only. Starts the fake upstream, the
passthrough, `routectl serve` (1 and 2 workers) on bench/routing.bench.yaml compiled at bench time,
and LiteLLM when `make bench-peers` installed it; pins the gateway to CPU 0 and the upstream and
load generator to CPU 1; prints one Markdown table, ratio lines, the issue's goals checked, the
table-size figure, and the tables of bench/bench_compile.py and bench/bench_decisions.py if present.
Every process it starts is stopped at the end, also on Ctrl-C, SIGTERM or an error.
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
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from harness import report, tablesize, targets
from harness.load import Driver
from harness.procs import CLK_TCK, TASKSET, ProcessGroup, cpu_ticks, free_port, peak_rss_kb
from harness.report import Row
from harness.targets import Route, Target

BENCH_DIR = Path(__file__).resolve().parent
GATEWAY_CPU = "0"
CLIENT_CPU = "1"  # the fake upstream and the load generator
BIG_TABLE_COLLECTIONS = 10_000


@dataclass(frozen=True)
class Settings:
    """How long each measurement lasts, and the whole run's budget."""

    duration_s: float
    ttfc_s: float
    warmup_s: float
    budget_s: float
    quick: bool
    use_wrk: bool
    litellm: bool


class Bench:
    """One run: the processes, the load driver, the rows measured so far."""

    def __init__(self, settings: Settings, group: ProcessGroup, work: Path) -> None:
        self.s = settings
        self.group = group
        self.work = work
        self.pin = (os.cpu_count() or 1) >= 2
        self.driver = Driver(work, self.cpus(CLIENT_CPU), use_wrk=settings.use_wrk)
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.spread: list[str] = []
        self.started = time.monotonic()
        self.upstream_port = 0

    def cpus(self, which: str) -> str | None:
        """The CPU list to pin to, or None when the machine has a single CPU."""
        return which if self.pin else None

    def log(self, text: str) -> None:
        """Progress on stderr; the report goes to stdout at the end."""
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def over_budget(self) -> bool:
        """True once the run's time budget is spent; the remaining rows are skipped."""
        return time.monotonic() - self.started > self.s.budget_s

    # ------------------------------------------------------------ measuring

    def measure(self, target: Target) -> None:
        """Every scenario of one target: a warm-up, then json and stream at each concurrency."""
        pid = target.proc.pid if target.proc is not None else None
        if target.proc is not None and self.s.warmup_s > 0:
            warm = targets.request_body(target.routes[0].model, False)
            if _probe(target.url, warm, target.headers, False) is None:
                self.driver.load(target.url, warm, target.headers, 64, self.s.warmup_s)
        for stream in target.streams:
            for conc in target.concurrencies:
                for route in target.routes:
                    self.rows.append(self._measure_one(target, route, stream, conc, pid))

    def _measure_one(
        self, target: Target, route: Route, stream: bool, conc: int, pid: int | None
    ) -> Row:
        row = Row(target.name, route.label, stream, conc)
        if self.over_budget():
            row.note = "skipped: time budget spent"
            return row
        body = targets.request_body(route.model, stream)
        # The probe also drains the previous row: a slow gateway still works through the requests
        # the load generator abandoned when its run ended, and this one queues behind them.
        problem = _probe(target.url, body, target.headers, stream)
        if problem is not None:
            row.note = f"failed: {problem}"
            self.log(f"{target.name} {route.label}: {row.note}")
            return row
        stats_before = self._upstream_stats() if not stream and conc == 64 else None
        ticks = cpu_ticks(pid) if pid is not None else 0
        duration = max(self.s.duration_s, target.min_duration_s)
        try:
            row.load = self.driver.load(target.url, body, target.headers, conc, duration)
            if pid is not None and row.load.requests > 0:
                # CPU until the abandoned in-flight requests are done too, shared by all of them
                _probe(target.url, body, target.headers, stream)
                used = cpu_ticks(pid) - ticks
                row.cpu_us = used / CLK_TCK * 1e6 / (row.load.requests + conc + 1)
                row.rss_mb = peak_rss_kb(pid) / 1024.0
            if stream and conc == 1:
                row.ttfc = self.driver.ttfc(target.url, body, target.headers, self.s.ttfc_s)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            row.load = None
            row.note = f"failed: {str(exc).splitlines()[0][:160]}"
            self.log(f"{target.name} {route.label}: {row.note}")
            return row
        if stats_before is not None and target.name.startswith("routectl"):
            after = self._upstream_stats()
            diff = {
                k: v - stats_before.get(k, 0)
                for k, v in sorted(after.items())
                if v - stats_before.get(k, 0)
            }
            self.spread.append(f"- {target.name}, {route.label}: {diff}")
        mode = "stream" if stream else "json"
        self.log(
            f"{target.name:<22} {route.label:<24} {mode:<6} c={conc:<3} {row.load.rps:9,.0f} req/s "
            f"p50 {row.load.p50_ms:.2f} ms p99 {row.load.p99_ms:.2f} ms errors {row.load.errors}"
        )
        return row

    def _upstream_stats(self) -> dict[str, int]:
        import json

        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.upstream_port}/stats", timeout=5
        ) as resp:
            data: dict[str, int] = json.loads(resp.read())
        return data

    # ------------------------------------------------------------ the targets, one at a time

    def run(self) -> tuple[list[tablesize.TableFigure], list[str]]:
        """Measure every target, then the table size and the other benches."""
        self.upstream_port = free_port()
        upstream_url = f"http://127.0.0.1:{self.upstream_port}"
        targets.start_upstream(self.group, self.upstream_port, self.cpus(CLIENT_CPU))
        self.log(f"fake upstream on {upstream_url}")
        route_same = [Route("same request, no routing", "fake/gpt-4o-mini")]
        upstream_auth = {"Authorization": f"Bearer {targets.UPSTREAM_KEY}"}
        self.measure(
            Target(report.DIRECT, f"{upstream_url}/v1/chat/completions", upstream_auth, route_same)
        )

        port = free_port()
        proc = targets.start_passthrough(self.group, port, upstream_url, self.cpus(GATEWAY_CPU))
        self.measure(
            Target(
                report.PASSTHROUGH,
                f"http://127.0.0.1:{port}/v1/chat/completions",
                {},
                route_same,
                proc,
            )
        )
        self.group.stop(proc)

        table = self._routectl(upstream_url)
        self._litellm(upstream_url)
        figures = self._table_size(table) if table is not None else []
        return figures, self._other_benches()

    def _routectl(self, upstream_url: str) -> Path | None:
        auth = {"Authorization": f"Bearer {targets.BENCH_KEY}"}
        try:
            config = targets.write_bench_config(self.work, upstream_url + "/v1")
            table = targets.compile_config(config, self.work / "generated")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            self.notes.append(f"routectl not measured: {exc}")
            return None
        missing = targets.serve_available()
        if missing is not None:
            self.notes.append(f"routectl not measured: {missing}")
            return table
        for workers, name, concs in (
            (1, report.ROUTECTL_1W, (1, 64)),
            (2, report.ROUTECTL_2W, (64,)),
        ):
            if self.over_budget():
                self.notes.append(f"{name} skipped: time budget spent")
                continue
            port = free_port()
            # two workers get both CPUs (shared with the upstream and load generator): there is no third
            cpus = self.cpus(GATEWAY_CPU if workers == 1 else "0,1")
            try:
                proc = targets.start_routectl(self.group, table, port, workers, cpus)
            except RuntimeError as exc:
                self.notes.append(f"{name} did not start: {exc}")
                continue
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            streams = (False,) if self.s.quick and workers > 1 else (False, True)
            self.measure(Target(name, url, auth, targets.ROUTECTL_ROUTES, proc, concs, streams))
            self.group.stop(proc)
        return table

    def _litellm(self, upstream_url: str) -> None:
        if not self.s.litellm:
            self.notes.append("LiteLLM skipped (--no-litellm)")
            return
        version = targets.litellm_version()
        if version is None:
            self.notes.append(
                "LiteLLM not measured: not installed here; `make bench-peers` installs it into "
                "bench/.peers/litellm-venv (it needs PyPI)"
            )
            return
        if self.over_budget():
            self.notes.append("LiteLLM skipped: time budget spent")
            return
        config = targets.write_litellm_config(self.work, upstream_url + "/v1")
        port = free_port()
        t0 = time.monotonic()
        try:
            proc = targets.start_litellm(self.group, config, port, self.cpus(GATEWAY_CPU))
        except RuntimeError as exc:
            self.notes.append(f"LiteLLM {version} did not start: {exc}")
            return
        self.log(f"LiteLLM {version} ready after {time.monotonic() - t0:.1f}s")
        auth = {"Authorization": f"Bearer {targets.LITELLM_MASTER_KEY}"}
        name = f"{report.LITELLM_PREFIX} {version} (1 worker)"
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        routes = targets.LITELLM_ROUTES[:1] if self.s.quick else targets.LITELLM_ROUTES
        self.measure(Target(name, url, auth, routes, proc, min_duration_s=4.0))
        self.group.stop(proc)

    def _table_size(self, bench_table: Path) -> list[tablesize.TableFigure]:
        self.log(f"table size: building a {BIG_TABLE_COLLECTIONS:,}-collection table")
        big = tablesize.build_big_table(
            bench_table, BIG_TABLE_COLLECTIONS, self.work / "big_table.json"
        )
        figures = []
        for label, path in (
            ("bench table", bench_table),
            (f"{BIG_TABLE_COLLECTIONS:,} collections", big),
        ):
            try:
                fig = tablesize.measure_load(label, path)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.notes.append(f"table size ({label}) not measured: {exc}")
                continue
            if targets.serve_available() is None:
                port = free_port()
                t0 = time.monotonic()
                try:
                    proc = targets.start_routectl(
                        self.group, path, port, 1, self.cpus(GATEWAY_CPU), "table-size"
                    )
                    fig = tablesize.with_serve(fig, time.monotonic() - t0, peak_rss_kb(proc.pid))
                    self.group.stop(proc)
                except RuntimeError as exc:
                    self.notes.append(f"routectl serve with the {label} did not start: {exc}")
            figures.append(fig)
        return figures

    def _other_benches(self) -> list[str]:
        out = []
        limit = 30.0 if self.s.quick else 60.0
        for script in ("bench_compile.py", "bench_decisions.py"):
            path = BENCH_DIR / script
            if not path.exists():
                out.append(f"### {script}\n\nnot present yet.")
                continue
            self.log(f"running {script} (at most {limit:.0f} s)")
            env = {
                **os.environ,
                "BENCH_QUICK": "1" if self.s.quick else "0",
                "BENCH_BUDGET_S": f"{limit * 0.8:.0f}",  # a hint for scripts that can shorten
            }
            # through the process group, so a timeout also ends the script's own subprocesses
            proc = self.group.start(
                script, [sys.executable, str(path)], None, env=env, cwd=BENCH_DIR.parent
            )
            try:
                code: int | None = proc.popen.wait(timeout=limit)
            except subprocess.TimeoutExpired:
                code = None
            self.group.stop(proc)
            text = proc.log.read_text(errors="replace").strip() or "(no output)"
            if code is None:
                text += f"\n\n(stopped after {limit:.0f} s: the bench's time limit for {script})"
            elif code != 0:
                text += f"\n\n(exited with {code})"
            out.append(f"### {script}\n\n{text}")
        return out


def _probe(url: str, body: bytes, headers: dict[str, str], stream: bool) -> str | None:
    """One request before measuring: None when it answers 200 with a completion, else why not."""
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            data = resp.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}: {exc.read()[:160].decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return str(exc)
    if stream and b"data:" not in data:
        return "a streaming request got no SSE data"
    if not stream and b'"choices"' not in data:
        return f"no choices in the answer: {data[:160].decode(errors='replace')}"
    return None


def _machine(settings: Settings, driver: Driver) -> list[str]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    wrk = (
        "wrk " + _wrk_version()
        if driver.tool == "wrk"
        else "Python aiohttp load generator (wrk not found)"
    )
    pin = (
        "gateway on CPU 0, fake upstream + load generator on CPU 1 (taskset); 2 workers on CPUs 0-1"
        if TASKSET and (os.cpu_count() or 1) >= 2
        else "no pinning (taskset missing or one CPU)"
    )
    return [
        f"- date: {dt.datetime.now().isoformat(timespec='seconds')}; {os.cpu_count()} CPUs ({cpu}); "
        f"Linux {platform.release()}; Python {platform.python_version()}",
        f"- load: {wrk}; {settings.duration_s:g} s per row, closed loop; TTFC: {settings.ttfc_s:g} s of "
        "sequential streaming requests on one raw keep-alive socket",
        f"- pinning: {pin}",
    ]


def _wrk_version() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        return "?"
    out = subprocess.run([wrk, "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout + out.stderr).strip().splitlines()
    return first[0].split()[1] if first and len(first[0].split()) > 1 else "?"


def compose(
    bench: Bench, figures: list[tablesize.TableFigure], others: list[str], load: tuple[float, float]
) -> str:
    """The whole report as Markdown."""
    routes = [r.label for r in targets.ROUTECTL_ROUTES]
    big = next((f for f in figures if f.collections >= BIG_TABLE_COLLECTIONS), None)
    lines = ["## routectl benchmark", "", *_machine(bench.s, bench.driver)]
    lines.append(
        f"- load average at start / end: {load[0]:.2f} / {load[1]:.2f} (other work on the machine skews figures)"
    )
    lines += ["", report.markdown_table(bench.rows), "", "Ratios (same run):", ""]
    lines += report.ratio_lines(bench.rows, routes) or [
        "- none: routectl or its peers were not measured"
    ]
    lines += ["", "Goals of issue 6 (same run):", "", *report.goal_lines(bench.rows, routes, big)]
    if bench.spread:
        lines += [
            "",
            "Upstream requests per model during the json c=64 rows (routing spread):",
            "",
            *bench.spread,
        ]
    if figures:
        lines += ["", "### Table size", "", report.table_size_markdown(figures)]
    if bench.notes:
        lines += ["", "Notes:", "", *(f"- {n}" for n in bench.notes)]
    lines += ["", *others]
    return "\n".join(lines) + "\n"


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the bench, always stop what it started, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about one minute: 1 s per row")
    parser.add_argument("--duration", type=float, help="seconds per row (default 4, --quick 1)")
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument(
        "--no-litellm", action="store_true", help="leave LiteLLM out even if installed"
    )
    parser.add_argument(
        "--results", type=Path, default=BENCH_DIR / "results", help="where to save the report"
    )
    args = parser.parse_args(argv)
    duration = args.duration or (1.0 if args.quick else 4.0)
    settings = Settings(
        duration_s=duration,
        ttfc_s=0.5 if args.quick else 2.0,
        warmup_s=1.0,
        budget_s=75.0 if args.quick else 200.0,
        quick=args.quick,
        use_wrk=not args.no_wrk,
        litellm=not args.no_litellm,
    )
    work = Path(tempfile.mkdtemp(prefix="routectl-bench-"))
    group = ProcessGroup(work)
    previous: Callable[[int, FrameType | None], object] | int | None = signal.signal(
        signal.SIGTERM, _raise_exit
    )
    load_start = os.getloadavg()[0]
    bench = Bench(settings, group, work)
    try:
        figures, others = bench.run()
    except KeyboardInterrupt:
        print("interrupted; stopping every process the bench started", file=sys.stderr)
        return 130
    finally:
        group.stop_all()
        signal.signal(signal.SIGTERM, previous)
    text = compose(bench, figures, others, (load_start, os.getloadavg()[0]))
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    saved = args.results / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}.md"
    saved.write_text(text)
    shutil.rmtree(work, ignore_errors=True)
    print(f"(saved to {saved})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
