"""`routectl logs load FILE...`: access-log lines (or spool files) into request_logs.

Each line that holds the record of a routed request becomes its row; every other line (the
runtime's own log lines, the records of /metrics or /healthz, a line cut short) is skipped and
counted. Loading is idempotent by request id: a file loaded twice, or a record the live sink
already wrote, adds nothing.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from routectl.requestlogs.database import RequestLogDatabase
from routectl.requestlogs.rows import batch_json, parse_line

__all__ = ["LoadReport", "load_files"]

_BATCH = 5_000


@dataclass
class LoadReport:
    """What a load did."""

    lines: int = 0
    rows: int = 0  # lines that were records of routed requests
    inserted: int = 0
    duplicates: int = 0  # rows whose request id was there already

    @property
    def skipped(self) -> int:
        return self.lines - self.rows


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return cast(BinaryIO, gzip.open(path, "rb"))
    return Path(path).open("rb")


def _records(paths: Iterable[str], report: LoadReport) -> Iterator[dict[str, Any]]:
    for path in paths:
        handle = _open(path)
        try:
            for line in handle:
                report.lines += 1
                record = parse_line(line)
                if record is None:
                    continue
                report.rows += 1
                yield record
        finally:
            if handle is not sys.stdin.buffer:
                handle.close()


def load_files(url: str, paths: Iterable[str], *, timeout_s: float = 30.0) -> LoadReport:
    """Load every routed request's record in `paths` ("-": stdin; *.gz read as gzip)."""
    report = LoadReport()
    db = RequestLogDatabase(url, timeout_s=timeout_s)
    batch: list[dict[str, Any]] = []
    try:
        for record in _records(paths, report):
            batch.append(record)
            if len(batch) >= _BATCH:
                _flush(db, batch, report)
        _flush(db, batch, report)
    finally:
        db.close()
    return report


def _flush(db: RequestLogDatabase, batch: list[dict[str, Any]], report: LoadReport) -> None:
    if not batch:
        return
    payload, rows = batch_json(batch)  # a parsed line is JSON: all of them
    inserted = db.write(payload)
    report.inserted += inserted
    report.duplicates += len(rows) - inserted
    batch.clear()
