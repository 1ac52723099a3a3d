"""Prometheus metrics of one app, in its own CollectorRegistry (so tests and workers never collide)."""

from __future__ import annotations

from typing import Self, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


# prometheus-client's `labels()` converts every value with str(), checks the count and takes a lock
# on every call; the hot path asks for the same few children over and over. Its children live in
# `_metrics`, keyed by the tuple of label strings: a plain dict read finds an existing child
# (lock-free under the GIL), and anything else (a new child, non-str values, keywords) takes the
# library's own path, so clear()/remove() need no extra bookkeeping.


class _Counter(Counter):
    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        """The child for these label values (cached by prometheus-client's own dict)."""
        child = None if labelkwargs else self._metrics.get(labelvalues)  # type: ignore[arg-type]
        if child is not None:
            return cast(Self, child)
        return super().labels(*labelvalues, **labelkwargs)


class _Histogram(Histogram):
    def labels(self, *labelvalues: object, **labelkwargs: object) -> Self:
        """The child for these label values (cached by prometheus-client's own dict)."""
        child = None if labelkwargs else self._metrics.get(labelvalues)  # type: ignore[arg-type]
        if child is not None:
            return cast(Self, child)
        return super().labels(*labelvalues, **labelkwargs)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The runtime's counters and histograms."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.requests = _Counter(
            "routectl_requests",
            "HTTP requests by route, selected model and status",
            ("route", "model", "status"),
            registry=self.registry,
        )
        self.upstream_latency = _Histogram(
            "routectl_upstream_latency_seconds",
            "Upstream latency to the response head (first byte for streams)",
            ("model", "connection"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.fallbacks = _Counter(
            "routectl_fallbacks",
            "Attempts that fell back to the next candidate, by failed model and reason",
            ("model", "reason"),
            registry=self.registry,
        )
        self.cooldowns = _Counter(
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

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)
