"""Shared /metrics under --workers: counters and histograms add up, gauges do not."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from routectl.runtime.metrics import Metrics
from routectl.runtime.metrics_share import SharedMetrics


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_a_scrape_of_any_worker_answers_for_all(tmp_path: Path) -> None:
    workers = [Metrics(), Metrics()]
    shares = [SharedMetrics(m, tmp_path, i) for i, m in enumerate(workers)]
    for m in workers:
        m.table_info.labels("abc").set(1)
    for _ in range(3):
        workers[0].count_request("/v1/chat/completions", "echo/e1", 200)
    for _ in range(2):
        workers[1].count_request("/v1/chat/completions", "echo/e1", 200)
    workers[1].count_request("/v1/chat/completions", "echo/e2", 503)
    workers[0].observe_latency("echo/e1", "c", 0.02)
    workers[1].observe_latency("echo/e1", "c", 3.0)
    workers[1].fallbacks.labels("echo/e1", "rate_limited").inc()
    shares[1].publish()
    for m in workers:  # either worker gives the same figures (its own live, the other's snapshot)
        got = _samples(m.render())
        ok = (("model", "echo/e1"), ("route", "/v1/chat/completions"), ("status", "200"))
        assert got[("routectl_requests_total", ok)] == 5
        failed = (("model", "echo/e2"), ("route", "/v1/chat/completions"), ("status", "503"))
        assert got[("routectl_requests_total", failed)] == 1
        latency = (("connection", "c"), ("model", "echo/e1"))
        assert got[("routectl_upstream_latency_seconds_count", latency)] == 2
        assert got[("routectl_upstream_latency_seconds_sum", latency)] == 3.02
        bucket = (("connection", "c"), ("le", "0.025"), ("model", "echo/e1"))
        assert got[("routectl_upstream_latency_seconds_bucket", bucket)] == 1
        reason = (("model", "echo/e1"), ("reason", "rate_limited"))
        assert got[("routectl_fallbacks_total", reason)] == 1
        assert got[("routectl_table_info", (("sha256", "abc"),))] == 1  # a gauge: not 2
        shares[0].publish()
