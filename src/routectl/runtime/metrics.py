"""Prometheus metrics of one app, in its own CollectorRegistry (so tests and workers never collide).

The two series touched by every request (`routectl_requests_total`, the upstream latency histogram)
are plain dicts of numbers updated with one lookup, and turned into Prometheus samples only when
`/metrics` is scraped; prometheus-client's `labels()` (str() of every value, a count check, a lock)
and its per-child mutexes stay off the request path. Rare events use the library's own metrics.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

__all__ = ["LATENCY_BUCKETS", "Metrics"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LE = [repr(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]  # as prometheus-client writes them


class _Latency:
    """One histogram child: a count per bucket (not cumulative), the sum, its creation time."""

    __slots__ = ("counts", "created", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one is +Inf
        self.total = 0.0
        self.created = time.time()


class _HotCollector(Collector):
    """Exports the request counter and the latency histogram at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        requests = CounterMetricFamily(
            "routectl_requests",
            "HTTP requests by route, selected model and status",
            labels=("route", "model", "status"),
        )
        for (route, model, status), n in list(m.request_counts.items()):
            created = m.request_created.get((route, model, status))
            requests.add_metric((route, model, str(status)), n, created=created)
        yield requests
        latency = HistogramMetricFamily(
            "routectl_upstream_latency_seconds",
            "Upstream latency to the response head (first byte for streams)",
            labels=("model", "connection"),
        )
        for (model, connection), child in list(m.latency.items()):
            cumulative, buckets = 0, []
            for le, n in zip(_LE, child.counts, strict=True):
                cumulative += n
                buckets.append((le, float(cumulative)))
            latency.add_metric((model, connection), buckets, child.total)
            labels = {"model": model, "connection": connection}
            latency.samples.append(
                Sample("routectl_upstream_latency_seconds_created", labels, child.created)
            )
        yield latency

    def describe(self) -> Iterator[Metric]:
        """Names only, so the registry can check for duplicates without a scrape."""
        yield CounterMetricFamily("routectl_requests", "", labels=("route", "model", "status"))
        yield HistogramMetricFamily(
            "routectl_upstream_latency_seconds", "", labels=("model", "connection")
        )


class Metrics:
    """The runtime's counters and histograms."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        # (route, model, status) -> requests; and when each series appeared
        self.request_counts: dict[tuple[str, str, int], int] = {}
        self.request_created: dict[tuple[str, str, int], float] = {}
        # (model, connection) -> latency histogram child
        self.latency: dict[tuple[str, str], _Latency] = {}
        self.registry.register(_HotCollector(self))
        # set by metrics_share.SharedMetrics under `serve --workers N`: the whole server's answer
        self.exporter: Callable[[], bytes] | None = None
        self.fallbacks = Counter(
            "routectl_fallbacks",
            "Attempts that fell back to the next candidate, by failed model and reason",
            ("model", "reason"),
            registry=self.registry,
        )
        self.cooldowns = Counter(
            "routectl_cooldowns",
            "Deployment cooldowns opened, by connection, model and reason",
            ("connection", "model", "reason"),
            registry=self.registry,
        )
        self.reloads = Counter(
            "routectl_table_reloads",
            "Routing table reloads by result",
            ("result",),
            registry=self.registry,
        )
        self.table_info = Gauge(
            "routectl_table_info",
            "The routing table being served",
            ("sha256",),
            registry=self.registry,
        )

    def count_request(self, route: str, model: str, status: int) -> None:
        """One answered request."""
        key = (route, model, status)
        counts = self.request_counts
        n = counts.get(key)
        if n is None:
            counts[key] = 1
            self.request_created[key] = time.time()
        else:
            counts[key] = n + 1

    def observe_latency(self, model: str, connection: str, seconds: float) -> None:
        """One upstream response head after `seconds`."""
        child = self.latency.get((model, connection))
        if child is None:
            child = self.latency[(model, connection)] = _Latency()
        # bisect_left: the first bound >= seconds, Prometheus' `le` (bounds are inclusive)
        child.counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        child.total += seconds

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry (of every worker, when shared)."""
        if self.exporter is not None:
            return self.exporter()
        return generate_latest(self.registry)
