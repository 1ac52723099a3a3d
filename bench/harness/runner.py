"""One bench run: start the targets, measure them interleaved, stop them; table size; other benches.

Background load on a shared machine drifts over seconds, so the gateways that the ratios compare
(direct, passthrough, routectl with 1 and 2 workers) run side by side and are measured in turns:
for each scenario, every target once, then every target again, `reps` times; each row keeps its
best repetition (highest req/s). LiteLLM, 20-100x slower, is measured alone afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness import report, tablesize, targets
from harness.load import Driver
from harness.procs import CLK_TCK, ProcessGroup, cpu_ticks, free_port, peak_rss_kb, rss_kb
from harness.report import Row
from harness.targets import Route, Target

BENCH_DIR = Path(__file__).resolve().parent.parent
GATEWAY_CPU = "0"
CLIENT_CPU = "1"  # the fake upstream and the load generator
BIG_TABLE_COLLECTIONS = 10_000
OTHER_BENCHES = ("bench_compile.py", "bench_decisions.py", "bench_request_logs.py")


@dataclass(frozen=True)
class Settings:
    """How long each measurement lasts, how often it is repeated, and the run's budget."""

    duration_s: float  # one repetition of one row
    reps: int
    ttfc_s: float
    warmup_s: float
    budget_s: float  # for the load rows; table size and the other benches come after
    other_limit_s: float  # each of bench_compile.py / bench_decisions.py
    quick: bool
    use_wrk: bool
    litellm: bool
    peers: bool = True  # nginx and Portkey when bench/install_peers.sh put them there
    candidates: bool = False  # the upstream client candidates of issue 16 as rows too


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
        self.started = time.monotonic()
        self.upstream_port = 0
        self.figures: list[tablesize.TableFigure] = []
        self.others: list[str] = []

    def cpus(self, which: str) -> str | None:
        """The CPU list to pin to, or None when the machine has a single CPU."""
        return which if self.pin else None

    def log(self, text: str) -> None:
        """Progress on stderr; the report goes to stdout at the end."""
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def over_budget(self) -> bool:
        """True once the load rows' budget is spent; the remaining rows are skipped."""
        return time.monotonic() - self.started > self.s.budget_s

    # ------------------------------------------------------------ the run

    def run(self) -> None:
        """Measure every target, then the table size and the other benches."""
        self.upstream_port = free_port()
        upstream = f"http://127.0.0.1:{self.upstream_port}"
        targets.start_upstream(self.group, self.upstream_port, self.cpus(CLIENT_CPU))
        self.log(f"fake upstream on {upstream}; logs in {self.work}")
        same = [Route("same request, no routing", "fake/gpt-4o-mini")]
        side_by_side = [
            Target(
                report.DIRECT,
                f"{upstream}/v1/chat/completions",
                {"Authorization": f"Bearer {targets.UPSTREAM_KEY}"},
                same,
            )
        ]
        self._nginx(side_by_side, same)
        port = free_port()
        proc = targets.start_passthrough(self.group, port, upstream, self.cpus(GATEWAY_CPU))
        side_by_side.append(Target(report.PASSTHROUGH, _chat_url(port), {}, same, proc))
        if self.s.candidates:
            self._client_candidates(upstream, side_by_side, same)
        table = self._start_routectl(upstream, side_by_side)
        for target in side_by_side:
            self._warm(target)
        self.measure(side_by_side, self.s.reps)
        for target in side_by_side:
            if target.proc is not None:
                self.group.stop(target.proc)
        self._litellm(upstream)
        self._portkey(upstream, same)
        if table is not None:
            self._table_size(table)
        self._other_benches()

    def _start_routectl(self, upstream: str, into: list[Target]) -> Path | None:
        try:
            config = targets.write_bench_config(self.work, upstream + "/v1")
            table = targets.compile_config(config, self.work / "generated")
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            self.notes.append(f"routectl not measured: {exc}")
            return None
        missing = targets.serve_available()
        if missing is not None:
            self.notes.append(f"routectl not measured: {missing}")
            return table
        auth = {"Authorization": f"Bearer {targets.BENCH_KEY}"}
        for workers, name in ((1, report.ROUTECTL_1W), (2, report.ROUTECTL_2W)):
            port = free_port()
            # two workers get both CPUs, shared with the upstream and the load generator: no third
            cpus = self.cpus(GATEWAY_CPU if workers == 1 else "0,1")
            try:
                proc = targets.start_routectl(self.group, table, port, workers, cpus)
            except RuntimeError as exc:
                self.notes.append(f"{name} did not start: {exc}")
                continue
            routes = [*targets.ROUTECTL_ROUTES, targets.AFFINITY_ROUTE, targets.MESSAGES_ROUTE]
            target = Target(name, _chat_url(port), auth, routes, proc)
            if workers > 1:
                target.concurrencies = (64,)
                target.streams = (False,) if self.s.quick else (False, True)
            into.append(target)
        if self.s.candidates:  # the runtime on the client it had before issue 16
            port = free_port()
            extra = ("--upstream-client", "aiohttp")
            try:
                proc = targets.start_routectl(
                    self.group, table, port, 1, self.cpus(GATEWAY_CPU), "routectl-aiohttp", extra
                )
            except RuntimeError as exc:
                self.notes.append(f"{report.ROUTECTL_AIOHTTP} did not start: {exc}")
            else:
                routes = targets.ROUTECTL_ROUTES[2:]  # provider/model
                into.append(Target(report.ROUTECTL_AIOHTTP, _chat_url(port), auth, routes, proc))
        self._start_limited(config, auth, into)
        return table

    def _start_limited(self, config: Path, auth: dict[str, str], into: list[Target]) -> None:
        """routectl (1 worker) with the bench user's limits counted in Redis (issue 15)."""
        try:
            limited = config.with_name("routing.limits.yaml")
            limited.write_text(config.read_text() + targets.LIMITS_YAML)
            table = targets.compile_config(limited, self.work / "generated-limits")
            redis_port = free_port()
            targets.start_redis(self.group, redis_port, self.cpus(CLIENT_CPU))
            port = free_port()
            redis = ("--redis-url", f"redis://127.0.0.1:{redis_port}/0")
            proc = targets.start_routectl(
                self.group, table, port, 1, self.cpus(GATEWAY_CPU), "routectl-limits", redis
            )
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            self.notes.append(f"{report.ROUTECTL_LIMITS} not measured: {exc}")
            return
        routes = [Route(report.PROVIDER_MODEL, "fake/gpt-4o-mini")]
        into.append(Target(report.ROUTECTL_LIMITS, _chat_url(port), auth, routes, proc))

    def _nginx(self, into: list[Target], routes: list[Route]) -> None:
        if not self.s.peers:
            self.notes.append("nginx skipped (--no-peers)")
            return
        binary = targets.nginx_binary()
        version = targets.nginx_version(binary) if binary is not None else None
        if binary is None or version is None:
            self.notes.append(
                "nginx not measured: not installed here; `make bench-peers` unpacks Debian's "
                "package into bench/.peers/nginx"
            )
            return
        port = free_port()
        try:
            proc = targets.start_nginx(
                self.group, binary, self.work, port, self.upstream_port, self.cpus(GATEWAY_CPU)
            )
        except RuntimeError as exc:
            self.notes.append(f"nginx {version} did not start: {exc}")
            return
        name = f"{report.NGINX_PREFIX} {version} (1 worker)"
        into.append(Target(name, _chat_url(port), {}, routes, proc))

    def _client_candidates(self, upstream: str, into: list[Target], routes: list[Route]) -> None:
        from harness.clients import pyreqwest_available

        for client in ("lean", "pyreqwest"):
            if client == "pyreqwest" and (why := pyreqwest_available()) is not None:
                self.notes.append(f"passthrough on pyreqwest not measured: {why}")
                continue
            port = free_port()
            try:
                proc = targets.start_passthrough(
                    self.group, port, upstream, self.cpus(GATEWAY_CPU), client
                )
            except RuntimeError as exc:
                self.notes.append(f"passthrough on {client} did not start: {exc}")
                continue
            name = f"{report.PASSTHROUGH} ({client} client)"
            into.append(Target(name, _chat_url(port), {}, routes, proc))

    def _portkey(self, upstream: str, routes: list[Route]) -> None:
        if not self.s.peers:
            self.notes.append("Portkey skipped (--no-peers)")
            return
        version = targets.portkey_version()
        if version is None:
            self.notes.append(
                "Portkey not measured: not installed here (or no node); `make bench-peers` "
                "installs @portkey-ai/gateway from npm into bench/.peers/portkey"
            )
            return
        if self.over_budget():
            self.notes.append("Portkey skipped: time budget spent")
            return
        port = free_port()
        try:
            proc = targets.start_portkey(self.group, port, self.cpus(GATEWAY_CPU))
        except RuntimeError as exc:
            self.notes.append(f"Portkey {version} did not start: {exc}")
            return
        target = Target(
            f"{report.PORTKEY_PREFIX} {version} (1 worker)",
            _chat_url(port),
            targets.portkey_headers(upstream + "/v1"),
            routes,
            proc,
            min_duration_s=2.0,
        )
        self._warm(target)
        self.measure([target], 1 if self.s.quick else 2)
        self.group.stop(proc)
        log = proc.log.read_text(errors="replace") if proc.log.exists() else ""
        if "TypeError: immutable" in log:  # its streaming path on Node 20: reported, not patched
            self.notes.append(
                f"Portkey {version}: its log says `TypeError: immutable` (the known failure of its "
                f"streaming path on Node {_node_version()}); not patched"
            )

    def _litellm(self, upstream: str) -> None:
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
        config = targets.write_litellm_config(self.work, upstream + "/v1")
        port = free_port()
        t0 = time.monotonic()
        try:
            proc = targets.start_litellm(self.group, config, port, self.cpus(GATEWAY_CPU))
        except RuntimeError as exc:
            self.notes.append(f"LiteLLM {version} did not start: {exc}")
            return
        self.log(f"LiteLLM {version} ready after {time.monotonic() - t0:.1f}s")
        routes = targets.LITELLM_ROUTES[:1] if self.s.quick else targets.LITELLM_ROUTES
        target = Target(
            f"{report.LITELLM_PREFIX} {version} (1 worker)",
            _chat_url(port),
            {"Authorization": f"Bearer {targets.LITELLM_MASTER_KEY}"},
            routes,
            proc,
            min_duration_s=3.0 if self.s.quick else 4.0,
        )
        self._warm(target)
        self.measure([target], 1)
        self.group.stop(proc)

    # ------------------------------------------------------------ measuring

    def _warm(self, target: Target) -> None:
        if target.proc is None or self.s.warmup_s <= 0:
            return
        route = target.routes[0]
        body = targets.request_body(route.model, False)
        url, headers = targets.route_url(target, route), targets.route_headers(target, route)
        if _probe(url, body, headers, False) is None:
            seconds = max(self.s.warmup_s, target.min_duration_s)
            try:
                self.driver.load(url, body, headers, 64, seconds)
            except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
                self.log(f"{target.name}: warm-up failed: {exc}")

    def measure(self, group: list[Target], reps: int) -> None:
        """Every scenario, each target of `group` in turn, `reps` times; keep each row's best."""
        best: dict[tuple[str, str, bool, int], Row] = {}
        for stream in (False, True):
            for conc in (1, 64):
                slots = [
                    (t, r)
                    for t in group
                    if stream in t.streams and conc in t.concurrencies
                    for r in t.routes
                ]
                for _ in range(reps):
                    for target, route in slots:
                        row = self._measure_one(target, route, stream, conc)
                        key = (target.name, route.label, stream, conc)
                        best[key] = _better(best.get(key), row)
        for target in group:  # in the table: grouped by target
            for stream in (False, True):
                for conc in (1, 64):
                    for route in target.routes:
                        key = (target.name, route.label, stream, conc)
                        if key in best:
                            self.rows.append(best[key])
                            self._log_row(best[key])

    def _measure_one(self, target: Target, route: Route, stream: bool, conc: int) -> Row:
        row = Row(target.name, route.label, stream, conc)
        if self.over_budget():
            row.note = "skipped: time budget spent"
            return row
        body = targets.request_body(route.model, stream)
        url, headers = targets.route_url(target, route), targets.route_headers(target, route)
        expect = targets.route_answers(route)
        # The check also drains the previous row: a slow gateway still works through the requests
        # the load generator abandoned when its run ended, and this one queues behind them.
        problem = _probe(url, body, headers, stream, expect)
        if problem is not None:
            row.note = f"failed: {problem}"
            return row
        pid = target.proc.pid if target.proc is not None else None
        watch_spread = not stream and conc == 64 and target.name.startswith("routectl")
        before = self._upstream_stats() if watch_spread else {}
        ticks = cpu_ticks(pid) if pid is not None else 0
        duration = max(self.s.duration_s, target.min_duration_s)
        try:
            row.load = self.driver.load(url, body, headers, conc, duration)
            if pid is not None and row.load.requests > 0:
                # CPU until the abandoned in-flight requests are done too, shared by all of them
                _probe(url, body, headers, stream, expect)
                used = cpu_ticks(pid) - ticks
                row.cpu_us = used / CLK_TCK * 1e6 / (row.load.requests + conc + 1)
                row.rss_mb = peak_rss_kb(pid) / 1024.0
            if stream and conc == 1:
                ttfc_s = max(0.3, self.s.ttfc_s / max(1, self.s.reps))
                row.ttfc = self.driver.ttfc(url, body, headers, ttfc_s)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            row.load = None
            row.note = f"failed: {str(exc).splitlines()[0][:160]}"
            return row
        if watch_spread:
            after = self._upstream_stats()
            row.spread = {
                k: v - before.get(k, 0) for k, v in sorted(after.items()) if v > before.get(k, 0)
            }
        return row

    def _log_row(self, row: Row) -> None:
        mode = "stream" if row.stream else "json"
        head = f"{row.target:<26} {row.route:<24} {mode:<6} c={row.conc:<3}"
        if row.load is None:
            self.log(f"{head} {row.note}")
            return
        ld = row.load
        self.log(
            f"{head} {ld.rps:9,.0f} req/s p50 {ld.p50_ms:.2f} ms p99 {ld.p99_ms:.2f} ms "
            f"errors {ld.errors}"
        )

    def _upstream_stats(self) -> dict[str, int]:
        url = f"http://127.0.0.1:{self.upstream_port}/stats"
        with urllib.request.urlopen(url, timeout=5) as resp:
            data: dict[str, int] = json.loads(resp.read())
        return data

    # ------------------------------------------------------------ table size, other benches

    def _table_size(self, bench_table: Path) -> None:
        self.log(f"table size: a {BIG_TABLE_COLLECTIONS:,}-collection table")
        big = tablesize.build_big_table(
            bench_table, BIG_TABLE_COLLECTIONS, self.work / "big_table.json"
        )
        can_serve = targets.serve_available() is None
        for label, path in (
            ("bench table", bench_table),
            (f"{BIG_TABLE_COLLECTIONS:,} collections", big),
        ):
            try:
                fig = tablesize.measure_load(label, path)
            except (RuntimeError, subprocess.TimeoutExpired) as exc:
                self.notes.append(f"table size ({label}) not measured: {exc}")
                continue
            if can_serve:
                port = free_port()
                t0 = time.monotonic()
                try:
                    proc = targets.start_routectl(
                        self.group, path, port, 1, self.cpus(GATEWAY_CPU), "table-size"
                    )
                    ready = time.monotonic() - t0
                    time.sleep(0.5)  # let the allocator settle after the load
                    fig = tablesize.with_serve(fig, ready, peak_rss_kb(proc.pid), rss_kb(proc.pid))
                    self.group.stop(proc)
                except RuntimeError as exc:
                    self.notes.append(f"routectl serve with the {label} did not start: {exc}")
            self.figures.append(fig)

    def _other_benches(self) -> None:
        limit = self.s.other_limit_s
        for script in OTHER_BENCHES:
            path = BENCH_DIR / script
            if not path.exists():
                self.others.append(f"### {script}\n\nnot present yet.")
                continue
            self.log(f"running {script} (at most {limit:.0f} s)")
            env = {
                **os.environ,
                "BENCH_QUICK": "1" if self.s.quick else "0",
                "BENCH_BUDGET_S": f"{limit * 0.8:.0f}",  # a hint for scripts that can shorten
            }
            # through the process group, so a timeout also ends the script's own subprocesses
            argv = [sys.executable, str(path)]
            # its report is stdout; stderr has its progress lines
            proc = self.group.start(
                script, argv, None, env=env, cwd=BENCH_DIR.parent, separate_stderr=True
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
                errors = proc.log.with_name(f"{script}.err.log").read_text(errors="replace")
                text += f"\n\n(exited with {code})\n\n```\n{errors.strip()[-1500:]}\n```"
            self.others.append(f"### {script}\n\n{text}")


def _node_version() -> str:
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.stdout.strip().lstrip("v") or "?"


def _chat_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/chat/completions"


def _better(old: Row | None, new: Row) -> Row:
    if old is None or old.load is None:
        return new
    if new.load is None:
        return old
    return new if new.load.rps > old.load.rps else old


def _probe(
    url: str, body: bytes, headers: dict[str, str], stream: bool, expect: bytes = b'"choices"'
) -> str | None:
    """One request: None when it answers 200 with a completion (`expect` in it), else why not."""
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
    if not stream and expect not in data:
        return f"no {expect.decode()} in the answer: {data[:160].decode(errors='replace')}"
    return None
