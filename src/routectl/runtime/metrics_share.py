"""`/metrics` across `routectl serve --workers N`: one answer for the whole server.

The workers share one port, so a scrape reaches whichever worker accepts it. Each worker therefore
publishes a snapshot of its samples to a folder the parent made (every `interval` seconds, and just
before it answers a scrape), and answers a scrape with the sum over every worker's latest snapshot:
counters and histogram buckets add up, `_created` takes the earliest, gauges the largest. Other
workers' figures are at most `interval` old. The request path is untouched: it still updates the
worker's own dicts; only the timer and the scrape do this work.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from routectl.runtime.metrics import Metrics

__all__ = ["SharedMetrics"]

_SUFFIX = ".metrics.json"


class _Families(Collector):
    """Yields metric families built elsewhere (the merged ones)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def _merge(value: float, other: float, sample_name: str, family_type: str) -> float:
    if sample_name.endswith("_created"):
        return min(value, other)
    if family_type in ("gauge", "info", "stateset"):
        return max(value, other)
    return value + other  # counters, histogram buckets, counts and sums


class SharedMetrics:
    """One worker's side of the shared metrics folder."""

    def __init__(
        self, metrics: Metrics, folder: str | Path, worker: int, interval: float = 1.0
    ) -> None:
        self.metrics = metrics
        self.folder = Path(folder)
        self.worker = worker
        self.interval = interval
        self._timer: asyncio.TimerHandle | None = None
        metrics.exporter = self.render

    @property
    def own_file(self) -> Path:
        """Where this worker's snapshot lives."""
        return self.folder / f"worker-{self.worker}{_SUFFIX}"

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Publish now and then every `interval` seconds on `loop`."""
        self.publish()
        self._timer = loop.call_later(self.interval, self._tick, loop)

    def stop(self) -> None:
        """Stop the timer (the last snapshot stays: its counts happened)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.publish()
        self._timer = loop.call_later(self.interval, self._tick, loop)

    def publish(self, families: list[Metric] | None = None) -> None:
        """Write this worker's samples, atomically (a reader sees the old or the new snapshot)."""
        if families is None:
            families = list(self.metrics.registry.collect())
        rows = [
            [family.name, family.type, s.name, s.labels, s.value]
            for family in families
            for s in family.samples
        ]
        fd, tmp = tempfile.mkstemp(prefix=".worker-", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(rows))
            os.replace(tmp, self.own_file)
        except OSError:  # a full or vanished folder must not take the worker down
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _others(self) -> Iterable[list[Any]]:
        for path in sorted(self.folder.glob(f"*{_SUFFIX}")):
            if path == self.own_file:
                continue
            try:
                rows = orjson.loads(path.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue  # a worker that has not published yet
            if isinstance(rows, list):
                yield from (r for r in rows if isinstance(r, list) and len(r) == 5)

    def render(self) -> bytes:
        """The Prometheus text of every worker together."""
        families = list(self.metrics.registry.collect())
        self.publish(families)  # the same figures this scrape reports, for the others' scrapes
        by_name = {f.name: f for f in families}
        index: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}
        for family in families:
            for i, s in enumerate(family.samples):
                index[(s.name, tuple(sorted(s.labels.items())))] = i
        for family_name, family_type, sample_name, labels, value in self._others():
            target = by_name.get(family_name)
            if target is None or not isinstance(labels, dict):
                continue
            key = (sample_name, tuple(sorted(labels.items())))
            at = index.get(key)
            if at is None:
                index[key] = len(target.samples)
                target.samples.append(Sample(sample_name, labels, float(value)))
            else:
                mine = target.samples[at]
                merged = _merge(mine.value, float(value), sample_name, family_type)
                target.samples[at] = mine._replace(value=merged)
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Families(families))
        return generate_latest(registry)
