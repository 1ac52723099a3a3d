"""The sink's bounds, without a database: a full queue and a full spool drop rows and count them,
the spool never holds more than its bound, and a spool file is the access-log records themselves."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from routectl.requestlogs.rows import parse_line
from routectl.requestlogs.sink import RequestLogSink, default_spool_dir, describe_url
from routectl.requestlogs.spool import Spool


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there once the socket is closed


def _record(i: int) -> dict[str, Any]:
    return {
        "request_id": f"req-{i:05d}",
        "method": "POST",
        "path": "/v1/chat/completions",
        "status": 200,
        "latency_ms": 1.5,
        "ts": 1_800_000_000.5,  # one length for every line
        "caller": "carol",
        "pad": "x" * 100,
    }


def test_a_full_queue_drops_and_counts(tmp_path: Path) -> None:
    sink = RequestLogSink(
        f"postgresql://u:secret@127.0.0.1:{_closed_port()}/db", tmp_path, queue_max=5
    )
    for i in range(8):
        sink.offer(_record(i))
    sink.offer({**_record(99), "path": "/metrics"})  # not a model call: not queued at all
    assert (sink.queued, len(sink.queue), sink.dropped["queue_full"]) == (5, 5, 3)


def _offer_until_settled(
    sink: RequestLogSink, records: list[dict[str, Any]], settled: Callable[[], int]
) -> None:
    """Start the sink, offer the records, wait (10 s at most) until `settled()` counts them all,
    stop it."""
    sink.start()
    try:
        for record in records:
            sink.offer(record)
        deadline = time.monotonic() + 10
        while settled() < len(records):
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        sink.stop()


def test_the_database_away_spools_within_the_bound_and_counts_the_rest(tmp_path: Path) -> None:
    url = f"postgresql://u:secret@127.0.0.1:{_closed_port()}/db?connect_timeout=1"
    one_line = len(json.dumps(_record(0), separators=(",", ":"))) + 1
    sink = RequestLogSink(url, tmp_path / "spool", spool_max_bytes=one_line * 10, interval=0.05)
    _offer_until_settled(
        sink, [_record(i) for i in range(25)], lambda: sink.spooled + sink.dropped["spool_full"]
    )
    assert (sink.spooled, sink.dropped["spool_full"], sink.written) == (10, 15, 0)
    assert sink.up is False
    files = list((tmp_path / "spool").glob("*.jsonl"))
    assert len(files) == 1 and files[0].stat().st_size <= one_line * 10
    records = [parse_line(line) for line in files[0].read_bytes().splitlines()]
    assert [r["request_id"] for r in records if r] == [f"req-{i:05d}" for i in range(10)]


def test_spool_files_held_by_a_writer_are_not_claimed(tmp_path: Path) -> None:
    a, b = Spool(tmp_path, 10**6), Spool(tmp_path, 10**6)
    record = _record(1)
    assert a.append([record]) == (1, 0)
    assert list(b.claim()) == []  # a still holds its file
    a.close_own()
    (claimed,) = list(b.claim())
    assert list(a.claim()) == []  # b holds it now
    assert [parse_line(x) for x in claimed.lines()] == [record]
    claimed.done()
    assert not a.pending()


def test_the_url_is_never_shown_with_its_password() -> None:
    url = "postgresql://writer:s3cret@db.internal:6543/usage"
    assert describe_url(url) == "db.internal:6543/usage"
    assert "s3cret" not in str(default_spool_dir(url))


def test_a_record_that_is_not_json_is_dropped_and_counted_the_rest_of_its_batch_kept(
    tmp_path: Path,
) -> None:
    url = f"postgresql://u:secret@127.0.0.1:{_closed_port()}/db?connect_timeout=1"
    sink = RequestLogSink(url, tmp_path / "spool", interval=0.05)
    offered = [{**_record(i), "odd": object()} if i == 2 else _record(i) for i in range(5)]
    _offer_until_settled(sink, offered, lambda: sink.spooled + sink.dropped["invalid"])
    assert (sink.spooled, sink.dropped["invalid"], sink.queued) == (4, 1, 5)
    (spool_file,) = (tmp_path / "spool").glob("*.jsonl")
    records = [parse_line(line) for line in spool_file.read_bytes().splitlines()]
    assert [r["request_id"] for r in records if r] == [f"req-{i:05d}" for i in (0, 1, 3, 4)]


def test_queued_counts_every_record_taken_or_waiting_and_never_goes_back(tmp_path: Path) -> None:
    sink = RequestLogSink(f"postgresql://u@127.0.0.1:{_closed_port()}/db", tmp_path)
    seen = []
    for i in range(4):
        sink.offer(_record(i))
        seen.append(sink.queued)
    sink.queue.popleft()  # the writer took one and has not counted it yet
    seen.append(sink.queued)
    sink.taken += 1
    seen.append(sink.queued)
    assert seen == [1, 2, 3, 4, 4, 4]
