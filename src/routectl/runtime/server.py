"""The process model of `routectl serve`: one worker's event loop, N forked workers sharing the
port and kept alive by a supervisor, signals (SIGHUP reloads, SIGTERM/SIGINT drain and stop), the
table watch, garbage-collector tuning and logging."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NoReturn

from aiohttp import web

from routectl.runtime.accesslog import AccessLog
from routectl.runtime.app import Mount, create_app
from routectl.runtime.connections import GuardedSite, ServerLimits, raise_fd_limit
from routectl.runtime.front import FrontRunner
from routectl.runtime.keys import CONNECTIONS, RUNTIME
from routectl.runtime.limits import LimitSettings
from routectl.runtime.options import DEFAULT_MAX_RESPONSE_BYTES
from routectl.runtime.watch import WATCH_INTERVAL, TableWatcher
from routectl.table import RoutingTable

__all__ = ["Worker", "listen", "remember_early_hup", "run", "setup_logging"]

_GC_YOUNG = 20_000
log = logging.getLogger("routectl.runtime")


def setup_logging() -> None:
    """The runtime's log lines on stderr (the access log is written apart: runtime/accesslog.py)."""
    # what no routectl log line shows; LogRecord skips looking them up (logging HOWTO, Optimization)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    other = logging.StreamHandler(sys.stderr)
    other.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(other)
    log.setLevel(logging.INFO)
    log.propagate = False


@dataclass(frozen=True)
class Worker:
    """What one serving process serves, and how."""

    table: RoutingTable
    table_path: Path
    host: str
    port: int
    max_body_bytes: int
    mounts: Sequence[Mount] = ()  # endpoints of higher layers (the explain endpoint)
    reuse_port: bool = False  # --workers N: every worker binds the same port
    shared_metrics: tuple[Path, int] | None = None  # (folder, worker index) under --workers N
    watch: bool = False  # --watch: reload when the table file (or a symlink to it) changes
    drain_seconds: float = 30.0  # SIGTERM: the longest wait for requests in flight
    limits: ServerLimits = field(default_factory=ServerLimits)  # client timeouts and the cap
    supervisor: int | None = None  # the pid of the supervisor of --workers N, which forked this
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES  # a larger upstream body: 502
    metrics_token: str | None = None  # --metrics-token: /metrics needs it
    limit_settings: LimitSettings = field(default_factory=LimitSettings)  # --redis-url
    upstream_client: str = "lean"  # --upstream-client: runtime/upstream_client.py


# After a drain (or its deadline), the most aiohttp waits for a handler before cancelling it
_SHUTDOWN_GRACE = 0.25


async def _serve(w: Worker) -> None:
    # one JSON line per request on stderr, written in batches by the event loop
    access_log = AccessLog(sys.stderr.fileno())
    app = create_app(
        w.table,
        max_body_bytes=w.max_body_bytes,
        table_path=w.table_path,
        access_log=access_log,
        mounts=w.mounts,
        max_response_bytes=w.max_response_bytes,
        metrics_token=w.metrics_token,
        limits=w.limit_settings,
        upstream_client=w.upstream_client,
    )
    # the table and its index live as long as the process: keep the collector from re-scanning them
    gc.collect()
    gc.freeze()
    # A request allocates a few hundred containers, nearly all freed by reference counting. With
    # the default threshold (700) a young-generation pass runs every few requests and walks the
    # objects of every request in flight, promoting them to older generations that are walked
    # again; passes every ~20,000 allocations cost about 8 % less CPU per request (bench, c=64).
    gc.set_threshold(_GC_YOUNG, 50, 1000)
    runtime = app[RUNTIME]
    runner, port = await listen(app, w.host, w.port, w.limits, reuse_port=w.reuse_port)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    share = None
    if w.shared_metrics is not None:  # --workers N: every worker answers /metrics for them all
        from routectl.runtime.metrics_share import SharedMetrics

        share = SharedMetrics(runtime.metrics, *w.shared_metrics)
        share.start(loop)
    loop.add_signal_handler(signal.SIGHUP, runtime.reload_from_file)
    if _early_hup.is_set():  # a reload asked for while this worker was starting
        _early_hup.clear()  # (the loop owns SIGHUP now: the Python handler cannot run meanwhile)
        runtime.reload_from_file()
    watcher = TableWatcher(w.table_path, runtime.reload_from_file) if w.watch else None
    if watcher is not None:
        watcher.start()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if w.supervisor is not None:
        _stop_when_orphaned(loop, w.supervisor, stop)
    log.info(
        "serving %s (table %s) on http://%s:%d (pid %d)%s",
        w.table_path,
        w.table.sha256,
        w.host,
        port,
        os.getpid(),
        f", watching it every {WATCH_INTERVAL:g} s" if watcher is not None else "",
    )
    try:
        await stop.wait()
        await _drain(app, w.drain_seconds)
    finally:
        if watcher is not None:
            watcher.stop()
        if share is not None:
            share.stop()
        await runner.cleanup()


def _stop_when_orphaned(
    loop: asyncio.AbstractEventLoop, supervisor: int, stop: asyncio.Event
) -> None:
    """A worker whose supervisor died (SIGKILL, OOM) drains and stops, instead of holding the
    port with nobody to forward signals or replace workers."""

    def check() -> None:
        if os.getppid() != supervisor:
            log.error("supervisor (pid %d) is gone: this worker stops", supervisor)
            stop.set()
        else:
            loop.call_later(1.0, check)

    loop.call_later(1.0, check)


async def listen(
    app: web.Application,
    host: str,
    port: int,
    limits: ServerLimits,
    *,
    reuse_port: bool = False,
) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port with the client limits (timeouts, connection cap); the runner
    and the bound port."""
    runner = FrontRunner(
        app,
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=limits.keepalive_timeout,
        shutdown_timeout=_SHUTDOWN_GRACE,
    )
    await runner.setup()
    site = GuardedSite(runner, host, port, limits=limits, reuse_port=reuse_port)
    await site.start()
    return runner, site.port


async def _drain(app: web.Application, seconds: float) -> None:
    """SPEC §5 SIGTERM: /readyz 503 at once (the Service stops sending), requests that still
    arrive are served (answered with `Connection: close`), in-flight ones, streams included,
    finish; return when none remain, at the latest after `seconds`."""
    runtime, conns = app[RUNTIME], app[CONNECTIONS]
    runtime.draining = True
    log.info(
        "stopping: /readyz answers 503; %d request(s) in flight, waiting at most %g s",
        conns.in_flight,
        seconds,
    )
    if await conns.wait_idle(seconds):
        log.info("drained: no request in flight")
    else:
        log.warning("drain deadline: %d request(s) still in flight are cut", conns.in_flight)


def _run_worker(w: Worker) -> None:
    serving = _serve(w)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        asyncio.run(serving)
    else:
        uvloop.run(serving)


_STOPS = (signal.SIGTERM, signal.SIGINT)
_FORWARDED = (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)
_QUICK_DEATH = 1.0  # seconds: a worker dying sooner after its start failed to start
_MAX_FAILED_STARTS = 5  # in a row: then something is wrong that a new worker will not fix


def _how(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


class _Supervisor:
    """Forks n workers sharing the port (SO_REUSEPORT), forwards SIGHUP/SIGTERM/SIGINT to them,
    and replaces a worker that dies (logged) until told to stop."""

    def __init__(self, n: int, w: Worker) -> None:
        self.n = n
        self.w = w
        self.children: dict[int, int] = {}  # pid -> worker index
        self.started: dict[int, float] = {}  # worker index -> when its current process started
        self.stopping = False
        self.failed_starts = 0
        self.metrics_dir = Path(tempfile.mkdtemp(prefix="routectl-metrics-"))

    def run(self) -> int:
        for sig in _FORWARDED:
            signal.signal(sig, self._forward)
        for index in range(self.n):
            self._spawn(index)
        if _early_hup.is_set():  # asked for while forking: the workers remember it until they serve
            self._forward(signal.SIGHUP, None)
        status = 0
        while self.children:
            try:
                pid, raw = os.wait()
            except ChildProcessError:  # pragma: no cover - every child is in self.children
                break
            if pid not in self.children:
                continue
            index = self.children.pop(pid)
            code = os.waitstatus_to_exitcode(raw)
            if self.stopping:
                if code not in (0, -signal.SIGTERM):
                    status = 1
                continue
            quick = time.monotonic() - self.started[index] < _QUICK_DEATH
            self.failed_starts = self.failed_starts + 1 if quick else 0
            if self.failed_starts >= _MAX_FAILED_STARTS:
                log.error(
                    "worker %d (pid %d) %s; %d failed starts in a row, stopping",
                    index,
                    pid,
                    _how(code),
                    self.failed_starts,
                )
                self._forward(signal.SIGTERM, None)
                status = 1
                continue
            log.error("worker %d (pid %d) %s; starting a new one", index, pid, _how(code))
            if quick:  # one that dies as it starts is not re-forked in a tight loop
                time.sleep(_QUICK_DEATH)
            self._spawn(index)
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        return status

    def _forward(self, signum: int, _frame: object) -> None:
        if signum in _STOPS:
            self.stopping = True
        for child in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def _spawn(self, index: int) -> None:
        # signals wait while a worker is forked: one that arrives meanwhile is forwarded to it
        # too, once its pid is known
        signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
        try:
            if self.stopping:
                return
            pid = os.fork()
            if pid == 0:
                self._child(index)
            self.children[pid] = index
            self.started[index] = time.monotonic()
            log.info("worker %d started (pid %d)", index, pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)

    def _child(self, index: int) -> NoReturn:
        # the parent's handlers would signal this worker's siblings: until the worker's loop
        # takes them, SIGTERM/SIGINT end it and SIGHUP is remembered
        for sig in _STOPS:
            signal.signal(sig, signal.SIG_DFL)
        remember_early_hup()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
        code = 0
        try:
            shared = (self.metrics_dir, index)
            mine = replace(self.w, reuse_port=True, shared_metrics=shared, supervisor=os.getppid())
            _run_worker(mine)
        except BaseException:  # a worker must exit, never return into the parent's code
            log.exception("worker failed")
            code = 1
        logging.shutdown()  # os._exit skips atexit: flush the runtime log's handlers
        os._exit(code)


def run(w: Worker, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT (then drain): in this process, or in `workers` forked ones
    kept alive by a supervisor; the exit status."""
    raise_fd_limit()  # before the workers fork: the connection cap follows the limit
    if workers == 1:
        _run_worker(w)
        return 0
    # the workers inherit the loaded table; frozen, the collector never writes to its pages, so
    # they stay shared (copy-on-write) instead of being copied into every worker
    gc.collect()
    gc.freeze()
    return _Supervisor(workers, w).run()


# A SIGHUP that arrives before a worker's event loop handles it (while the table is loaded, the
# workers forked, the app built) is remembered and acted on once serving: with the default action
# a deploy script's "start, recompile, kill -HUP" would terminate the server instead.
_early_hup = threading.Event()


def remember_early_hup() -> None:
    """From now until a worker serves, a SIGHUP is remembered instead of terminating the process."""
    signal.signal(signal.SIGHUP, lambda _signum, _frame: _early_hup.set())
