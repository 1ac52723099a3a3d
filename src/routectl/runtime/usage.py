"""Usage figures of one process, from each request's record: Prometheus counters (tokens, cost,
requests by collection and strategy, cooldowns active) and the dashboard's rolling window.

`observe` runs once per request (the envelope calls it after the access-log line): a few dict
updates, no prometheus-client call; the counters become samples when `/metrics` is scraped, as
runtime/metrics.py does for the request counter. Labels are bounded by the table: collection,
strategy, model, status, token kind; never a caller, an organization or a connection id.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from routectl.runtime.state import Clock, RoutingState

__all__ = ["BUCKET_S", "ROUTED_PATHS", "WINDOW_BUCKETS", "Cell", "Usage"]

# The routes whose requests are model calls: what request_logs holds one row for and what the
# dashboard counts (other engineers' routes are listed ahead of them: embeddings, responses).
# `/v1/messages/count_tokens` calls no model for an answer and is left out.
ROUTED_PATHS = frozenset(
    {
        "/v1/chat/completions",
        "/v1/messages",
        "/v1/v1/messages",
        "/v1/embeddings",
        "/v1/responses",
    }
)
BUCKET_S = 10  # the dashboard's resolution
WINDOW_BUCKETS = 90  # 15 minutes of buckets


@dataclass(slots=True)
class Cell:
    """One collection's requests within one bucket (collection "" = routed without a collection)."""

    requests: int = 0
    errors: int = 0  # answered with status >= 400
    cost: float = 0.0
    tokens: int = 0
    latency_ms: float = 0.0  # the sum, over `requests`
    by_model: dict[str, int] = field(default_factory=dict)  # selected model -> requests


@dataclass(slots=True)
class _Bucket:
    start: int  # epoch seconds, a multiple of BUCKET_S
    cells: dict[str, Cell] = field(default_factory=dict)


class Usage:
    """Counters and the rolling window, fed by `observe(record)`."""

    def __init__(self, state: RoutingState, clock: Clock | None = None) -> None:
        self.state = state
        self.clock: Clock = clock or time.time
        # (model, "prompt" | "completion") -> tokens; model -> USD
        self.tokens: dict[tuple[str, str], int] = {}
        self.cost: dict[str, float] = {}
        # (collection, strategy, selected model or "", status) -> requests
        self.collection_requests: dict[tuple[str, str, str, int], int] = {}
        self.window: deque[_Bucket] = deque(maxlen=WINDOW_BUCKETS)
        self.cooled_models: set[str] = set()  # models ever cooled down: their gauge stays (0)

    def register(self, registry: CollectorRegistry) -> None:
        """Export the counters from `registry` (the runtime's)."""
        registry.register(_UsageCollector(self))

    def observe(self, rec: dict[str, Any]) -> None:
        """One answered request's record (the access-log line)."""
        if rec["path"] not in ROUTED_PATHS:
            return
        status: int = rec["status"]
        model: str = rec.get("selected_model") or ""
        collection: str = rec.get("collection") or ""
        if collection:
            key = (collection, rec.get("strategy") or "", model, status)
            self.collection_requests[key] = self.collection_requests.get(key, 0) + 1
        prompt = rec.get("prompt_tokens")
        completion = rec.get("completion_tokens")
        cost = rec.get("cost") or 0.0
        tokens = 0
        if model and prompt is not None and completion is not None:
            tokens = prompt + completion
            counts = self.tokens
            counts[(model, "prompt")] = counts.get((model, "prompt"), 0) + prompt
            counts[(model, "completion")] = counts.get((model, "completion"), 0) + completion
            self.cost[model] = self.cost.get(model, 0.0) + cost
        # the current bucket's cell without _cell's frame (the common case), else _cell
        window = self.window
        cell = None
        if window and window[-1].start == int(rec["ts"]) // BUCKET_S * BUCKET_S:
            cell = window[-1].cells.get(collection)
        if cell is None:
            cell = self._cell(rec["ts"], collection)
        cell.requests += 1
        if status >= 400:
            cell.errors += 1
        cell.cost += cost
        cell.tokens += tokens
        cell.latency_ms += rec["latency_ms"]
        if model:
            cell.by_model[model] = cell.by_model.get(model, 0) + 1

    def _cell(self, ts: float, collection: str) -> Cell:
        start = int(ts) // BUCKET_S * BUCKET_S
        window = self.window
        if not window or window[-1].start < start:
            window.append(_Bucket(start))
            bucket = window[-1]
        else:  # a request that ended just before a newer one (or a clock step back)
            bucket = next((b for b in reversed(window) if b.start <= start), window[0])
        cell = bucket.cells.get(collection)
        if cell is None:
            cell = bucket.cells[collection] = Cell()
        return cell

    def series(self, collection: str, now: float) -> list[tuple[int, Cell]]:
        """(bucket start, cell) for every bucket of the window ending at `now`, oldest first;
        buckets without requests hold an empty cell."""
        last = int(now) // BUCKET_S * BUCKET_S
        first = last - (WINDOW_BUCKETS - 1) * BUCKET_S
        found = {b.start: b.cells.get(collection) for b in self.window if b.start >= first}
        return [
            (start, found.get(start) or Cell()) for start in range(first, last + BUCKET_S, BUCKET_S)
        ]

    def cooldowns_active(self, now: float) -> dict[str, int]:
        """Model -> deployments (connection, model) cooling down now."""
        active: dict[str, int] = dict.fromkeys(self.cooled_models, 0)
        for (_connection, model), cooldown in list(self.state.cooldowns.items()):
            if cooldown.until > now:
                active[model] = active.get(model, 0) + 1
                self.cooled_models.add(model)
        return active


class _UsageCollector(Collector):
    def __init__(self, usage: Usage) -> None:
        self.usage = usage

    def collect(self) -> Iterator[Metric]:
        u = self.usage
        tokens = CounterMetricFamily(
            "routectl_tokens",
            "Tokens of answered requests, by model and kind",
            labels=("model", "kind"),
        )
        for (model, kind), n in sorted(u.tokens.items()):
            tokens.add_metric((model, kind), n)
        yield tokens
        cost = CounterMetricFamily(
            "routectl_cost_usd",
            "Cost of answered requests (table pricing), by model",
            labels=("model",),
        )
        for model, usd in sorted(u.cost.items()):
            cost.add_metric((model,), usd)
        yield cost
        requests = CounterMetricFamily(
            "routectl_collection_requests",
            "Requests that named a collection, by collection, strategy, selected model and status",
            labels=("collection", "strategy", "model", "status"),
        )
        for (collection, strategy, model, status), n in sorted(u.collection_requests.items()):
            requests.add_metric((collection, strategy, model, str(status)), n)
        yield requests
        active = GaugeMetricFamily(
            "routectl_cooldowns_active",
            "Deployments (connection, model) cooling down now, by model",
            labels=("model",),
        )
        for model, n in sorted(u.cooldowns_active(u.clock()).items()):
            active.add_metric((model,), n)
        yield active

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("routectl_tokens", "", labels=("model", "kind"))
        yield CounterMetricFamily("routectl_cost_usd", "", labels=("model",))
        yield CounterMetricFamily(
            "routectl_collection_requests", "", labels=("collection", "strategy", "model", "status")
        )
        yield GaugeMetricFamily("routectl_cooldowns_active", "", labels=("model",))
