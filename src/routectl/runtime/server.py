"""The process model of `routectl serve`: one worker's event loop, N forked workers sharing the
port, signals (SIGHUP reloads, SIGTERM/SIGINT stop), garbage-collector tuning and logging."""

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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web

from routectl.runtime.accesslog import AccessLog
from routectl.runtime.app import Mount, create_app
from routectl.runtime.keys import RUNTIME
from routectl.table import RoutingTable

__all__ = ["Worker", "remember_early_hup", "run", "setup_logging"]

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


async def _serve(w: Worker) -> None:
    # one JSON line per request on stderr, written in batches by the event loop
    access_log = AccessLog(sys.stderr.fileno())
    app = create_app(
        w.table,
        max_body_bytes=w.max_body_bytes,
        table_path=w.table_path,
        access_log=access_log,
        mounts=w.mounts,
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
    runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, w.host, w.port, reuse_port=w.reuse_port or None, backlog=1024)
    await site.start()
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
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    log.info(
        "serving %s (table %s) on http://%s:%d (pid %d)",
        w.table_path,
        w.table.sha256,
        w.host,
        w.port,
        os.getpid(),
    )
    try:
        await stop.wait()
    finally:
        if share is not None:
            share.stop()
        await runner.cleanup()


def _run_worker(w: Worker) -> None:
    serving = _serve(w)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        asyncio.run(serving)
    else:
        uvloop.run(serving)


def _run_workers(n: int, w: Worker) -> int:
    """Fork n workers sharing the port (SO_REUSEPORT); forward SIGHUP/SIGTERM/SIGINT to them."""
    # the workers inherit the loaded table; frozen, the collector never writes to its pages, so
    # they stay shared (copy-on-write) instead of being copied into every worker
    gc.collect()
    gc.freeze()
    children: list[int] = []
    metrics_dir = Path(tempfile.mkdtemp(prefix="routectl-metrics-"))
    for worker in range(n):
        pid = os.fork()
        if pid == 0:  # child
            code = 0
            try:
                shared = (metrics_dir, worker)
                _run_worker(replace(w, reuse_port=True, shared_metrics=shared))
            except BaseException:  # a worker must exit, never return into the parent's code
                log.exception("worker failed")
                code = 1
            logging.shutdown()  # os._exit skips atexit: flush the runtime log's handlers
            os._exit(code)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    if _early_hup.is_set():  # asked for while forking: the workers remember it until they serve
        forward(signal.SIGHUP, None)
    status = 0
    for child in children:
        while True:
            try:
                _, code = os.waitpid(child, 0)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                continue
        status = status or (1 if os.waitstatus_to_exitcode(code) not in (0, -signal.SIGTERM) else 0)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def run(w: Worker, workers: int = 1) -> int:
    """Serve until SIGTERM/SIGINT: in this process, or in `workers` forked ones; the exit status."""
    if workers == 1:
        _run_worker(w)
        return 0
    return _run_workers(workers, w)


# A SIGHUP that arrives before a worker's event loop handles it (while the table is loaded, the
# workers forked, the app built) is remembered and acted on once serving: with the default action
# a deploy script's "start, recompile, kill -HUP" would terminate the server instead.
_early_hup = threading.Event()


def remember_early_hup() -> None:
    """From now until a worker serves, a SIGHUP is remembered instead of terminating the process."""
    signal.signal(signal.SIGHUP, lambda _signum, _frame: _early_hup.set())
