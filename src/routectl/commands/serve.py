"""CLI commands: serve (the runtime). Imports only the runtime, never the compiler."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from routectl.table import DEFAULT_TABLE_PATH

if TYPE_CHECKING:
    from routectl.table import RoutingTable

_GC_YOUNG = 20_000


def _setup_logging() -> None:
    # what no routectl log line shows; LogRecord skips looking them up (logging HOWTO, Optimization)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # the access log does not go through logging: see runtime/accesslog.py
    other = logging.StreamHandler(sys.stderr)
    other.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    runtime = logging.getLogger("routectl.runtime")
    runtime.addHandler(other)
    runtime.setLevel(logging.INFO)
    runtime.propagate = False


@dataclass(frozen=True)
class _Worker:
    """What one serving process serves, and how."""

    table: RoutingTable
    table_path: Path
    host: str
    port: int
    max_body_bytes: int
    reuse_port: bool = False  # --workers N: every worker binds the same port
    shared_metrics: tuple[Path, int] | None = None  # (folder, worker index) under --workers N


async def _serve(w: _Worker) -> None:
    from aiohttp import web

    from routectl.runtime.accesslog import AccessLog
    from routectl.runtime.app import create_app
    from routectl.runtime.keys import RUNTIME

    # one JSON line per request on stderr, written in batches by the event loop
    access_log = AccessLog(sys.stderr.fileno())
    app = create_app(
        w.table, max_body_bytes=w.max_body_bytes, table_path=w.table_path, access_log=access_log
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
    import asyncio  # here, not at the top: every other command (compile in CI) skips its 40 ms

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
    logging.getLogger("routectl.runtime").info(
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


def _run_worker(w: _Worker) -> None:
    serving = _serve(w)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        import asyncio

        asyncio.run(serving)
    else:
        uvloop.run(serving)


def _run_workers(n: int, w: _Worker) -> int:
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
                logging.getLogger("routectl.runtime").exception("worker failed")
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


# A SIGHUP that arrives before a worker's event loop handles it (while the table is loaded, the
# workers forked, the app built) is remembered and acted on once serving: with the default action
# a deploy script's "start, recompile, kill -HUP" would terminate the server instead.
_early_hup = threading.Event()


def _remember_early_hup() -> None:
    signal.signal(signal.SIGHUP, lambda _signum, _frame: _early_hup.set())


def register(group: click.Group) -> None:
    """Attach this area's commands."""

    @group.command()
    @click.option(
        "--table",
        "table_path",
        default=DEFAULT_TABLE_PATH,
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="The compiled routing table (hash verified).",
    )
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
    @click.option(
        "--workers",
        default=1,
        show_default=True,
        type=click.IntRange(1, 256),
        help="Processes sharing the port (SO_REUSEPORT).",
    )
    @click.option(
        "--max-body-bytes",
        default=10 * 1024 * 1024,
        show_default=True,
        type=click.IntRange(1),
        help="Larger request bodies get 413 request_too_large.",
    )
    def serve(table_path: Path, host: str, port: int, workers: int, max_body_bytes: int) -> None:
        """Serve OpenAI-compatible requests routed by the frozen table; SIGHUP reloads it."""
        from routectl.table import TableError, load_table

        _remember_early_hup()  # inherited by forked workers until their loop takes SIGHUP over
        try:
            table = load_table(table_path)  # fail fast, before binding or forking; loaded once
        except TableError as exc:
            raise click.ClickException(str(exc)) from exc
        _setup_logging()
        w = _Worker(table, table_path, host, port, max_body_bytes)
        if workers == 1:
            _run_worker(w)
            return
        sys.exit(_run_workers(workers, w))
