"""`routectl serve --log-database-url`: every routed request's record becomes a request_logs row,
off the request path, without ever slowing or failing a request.

The request path (the envelope's observers) appends the record to a bounded in-memory queue: one
deque append, or a counter when the queue is full; nothing else per request (no row, no JSON, no
lock, no wake-up). A writer thread wakes every `interval` and writes what is queued in batches:
each batch one JSON array (one orjson call) and one INSERT that derives the rows in PostgreSQL,
idempotent by request id (database.py). When the database is away, slow (a statement over its
timeout) or refuses the rows, the batch goes to the spool (spool.py: local JSON lines, bounded in
bytes) and the writer retries the database every `retry_s`; once it answers, the spool is loaded
and deleted. So up to the spool's bound nothing is lost, and nothing is written twice. Counters
and gauges of all this are exported with the runtime's metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tempfile
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from routectl.requestlogs.database import RequestLogDatabase
from routectl.requestlogs.rows import batch_json, parse_line
from routectl.requestlogs.spool import Spool
from routectl.runtime.app import Mount
from routectl.runtime.keys import RUNTIME
from routectl.runtime.usage import ROUTED_PATHS

__all__ = [
    "DEFAULT_SPOOL_MAX_BYTES",
    "RequestLogSink",
    "default_spool_dir",
    "describe_url",
    "request_log_mount",
]

log = logging.getLogger("routectl.runtime")

DEFAULT_SPOOL_MAX_BYTES = 256 * 1024 * 1024
QUEUE_MAX = 50_000  # records waiting for the writer (a few seconds of a busy worker)
BATCH_MAX = 2_000


def default_spool_dir(url: str) -> Path:
    """A folder under the temporary directory, one per database: servers writing to the same
    database share it (any of them may load what another spooled), others never see it."""
    digest = hashlib.sha256(url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"routectl-request-logs-{digest}"


def describe_url(url: str) -> str:
    """host:port/dbname of a libpq URL or conninfo, for log lines (never its password)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "(unparsable database URL)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"


class RequestLogSink:
    """The queue, the writer thread, the spool, and their counters."""

    def __init__(
        self,
        url: str,
        spool_dir: str | Path | None = None,
        spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES,
        *,
        queue_max: int = QUEUE_MAX,
        batch_max: int = BATCH_MAX,
        interval: float = 0.5,
        retry_s: float = 2.0,
        timeout_s: float = 5.0,
    ) -> None:
        self.where = describe_url(url)
        self.db = RequestLogDatabase(url, timeout_s=timeout_s)
        self.spool = Spool(spool_dir or default_spool_dir(url), spool_max_bytes)
        self.queue: deque[dict[str, Any]] = deque()
        self.queue_max = queue_max
        self.batch_max = batch_max
        self.interval = interval
        self.retry_s = retry_s
        self.up: bool | None = None  # None: not tried yet
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # counters, each written by one thread: `dropped["queue_full"]` by the event loop, the
        # rest by the writer (`queued` is what it took plus what waits: no count per request)
        self.taken = 0  # records the writer took from the queue
        self._queued_seen = 0
        self.written = 0  # rows inserted, from the queue or the spool
        self.duplicates = 0  # rows already there (a spool file loaded again)
        self.spooled = 0
        self.dropped: dict[str, int] = {"queue_full": 0, "spool_full": 0, "invalid": 0}

    # ------------------------------------------------------------ the request path

    def offer(self, record: dict[str, Any]) -> None:
        """Queue a request's record (the envelope calls this once per request): the record as it
        is, one deque append (atomic under the GIL: no lock, no wake-up of the writer, which
        wakes on its own every `interval`); the row is made in the writer thread."""
        if record["path"] in ROUTED_PATHS:
            queue = self.queue
            if len(queue) < self.queue_max:
                queue.append(record)
            else:
                self.dropped["queue_full"] += 1

    @property
    def queued(self) -> int:
        """Records queued so far. The writer counts what it takes after taking it, so the sum
        can lag for a moment while it takes a batch: the largest value seen is kept, which never
        goes back and is exact once the writer has taken what it took."""
        self._queued_seen = max(self._queued_seen, self.taken + len(self.queue))
        return self._queued_seen

    # ------------------------------------------------------------ the writer thread

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name="routectl-request-logs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Write (or spool) what is queued, then stop the writer."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        try:
            self._cycle()  # at start: spool files left by an earlier process, if any
            while not self._stop.wait(self.interval):
                self._cycle()
            self._retry_at = 0.0  # at stop, one more try of the database for what is queued
            self._cycle()
        except Exception:  # a bug: log it, never take the server down
            log.exception("request_logs: the writer stopped")
        finally:
            self.spool.close_own()
            self.db.close()

    def _cycle(self) -> None:
        self._drain()
        if self.spool.pending() and self._database_worth_trying():
            self._replay()

    def _drain(self) -> None:
        queue = self.queue
        while queue:
            batch = [queue.popleft() for _ in range(min(len(queue), self.batch_max))]
            self.taken += len(batch)  # after taking them: `queued` may lag, never run ahead
            self._deliver(batch)

    def _database_worth_trying(self) -> bool:
        return self.up is not False or time.monotonic() >= self._retry_at

    def _encode(self, records: list[dict[str, Any]]) -> tuple[bytes, list[dict[str, Any]]]:
        batch, kept = batch_json(records)
        self.dropped["invalid"] += len(records) - len(kept)  # not JSON (never from the runtime)
        return batch, kept

    def _write(self, batch: bytes, rows: int) -> bool:
        """Write a batch (rows.batch_json) of `rows` records; False (the database is now marked
        away) when that failed."""
        try:
            inserted = self.db.write(batch)
        except (psycopg.Error, OSError) as exc:
            self._went_away(exc)
            return False
        self.written += inserted
        self.duplicates += rows - inserted
        if self.up is not True:
            log.info("request_logs: writing to %s", self.where)
        self.up = True
        return True

    def _went_away(self, exc: BaseException) -> None:
        if self.up is not False:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.warning(
                "request_logs: %s is unavailable (%s); rows go to the spool %s until it is back",
                self.where,
                first,
                self.spool.folder,
            )
        self.up = False
        self._retry_at = time.monotonic() + self.retry_s

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        batch, records = self._encode(records)
        if not records or (self._database_worth_trying() and self._write(batch, len(records))):
            return
        kept, dropped = self.spool.append(records)
        self.spooled += kept
        if dropped:
            self.dropped["spool_full"] += dropped
            log.error(
                "request_logs: the spool %s is full (%d bytes): %d rows dropped",
                self.spool.folder,
                self.spool.max_bytes,
                dropped,
            )

    def _replay(self) -> None:
        """Load every spool file nobody holds (this writer's own included), then delete it."""
        self.spool.close_own()
        loaded = 0
        for claimed in self.spool.claim():
            ok = True
            for chunk in _chunks(claimed.lines(), self.batch_max):
                batch, chunk = self._encode(chunk)
                if chunk and not self._write(batch, len(chunk)):
                    ok = False
                    break
                loaded += len(chunk)
                self._drain()  # requests keep coming: their rows go first
            if not ok:
                claimed.release()
                break
            claimed.done()
        if loaded:
            log.info("request_logs: loaded %d spooled rows into %s", loaded, self.where)

    # ------------------------------------------------------------ metrics

    def register(self, registry: CollectorRegistry) -> None:
        """Export the counters and gauges from `registry` (the runtime's)."""
        registry.register(_SinkCollector(self))


def _chunks(lines: Iterator[bytes], size: int) -> Iterator[list[dict[str, Any]]]:
    chunk: list[dict[str, Any]] = []
    for line in lines:
        record = parse_line(line)
        if record is None:  # a line cut short by a crash mid-write
            continue
        chunk.append(record)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class _SinkCollector(Collector):
    def __init__(self, sink: RequestLogSink) -> None:
        self.sink = sink

    def collect(self) -> Iterator[Metric]:
        s = self.sink
        for name, doc, value in (
            ("queued", "Request records queued for request_logs", s.queued),
            ("written", "request_logs rows written (from the queue or the spool)", s.written),
            ("spooled", "request_logs rows written to the local spool", s.spooled),
            ("duplicates", "request_logs rows skipped: their request id was there", s.duplicates),
        ):
            family = CounterMetricFamily(f"routectl_request_logs_{name}", doc)
            family.add_metric((), value)
            yield family
        dropped = CounterMetricFamily(
            "routectl_request_logs_dropped",
            "Request records lost to request_logs, by reason",
            labels=("reason",),
        )
        for reason, n in sorted(s.dropped.items()):
            dropped.add_metric((reason,), n)
        yield dropped
        for name, doc, gauge in (
            ("queue_rows", "Request records waiting in memory for the writer", len(s.queue)),
            ("spool_bytes", "Bytes in the spool folder", s.spool.size()),
            ("database_up", "1 when the last write to request_logs succeeded", int(bool(s.up))),
        ):
            g = GaugeMetricFamily(f"routectl_request_logs_{name}", doc)
            g.add_metric((), gauge)
            yield g


def request_log_mount(
    url: str, spool_dir: str | Path | None = None, spool_max_bytes: int = DEFAULT_SPOOL_MAX_BYTES
) -> Mount:
    """What the serve command passes to create_app: a sink per app (per worker), fed by the
    envelope, started and stopped with the app."""

    def mount(app: web.Application) -> None:
        runtime = app[RUNTIME]
        sink = RequestLogSink(url, spool_dir, spool_max_bytes)
        sink.register(runtime.metrics.registry)
        runtime.observers.append(sink.offer)
        app[SINK] = sink

        async def lifecycle(app: web.Application) -> AsyncIterator[None]:
            sink.start()
            yield
            await asyncio.to_thread(sink.stop)

        app.cleanup_ctx.append(lifecycle)

    return mount


SINK: web.AppKey[RequestLogSink] = web.AppKey("routectl_request_log_sink")
