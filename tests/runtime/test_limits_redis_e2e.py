"""Two `routectl serve` processes sharing one Redis: one limit across both, a token limit settled
from streamed usage, and Redis killed mid-test (fail open, fail closed, no hang)."""

from __future__ import annotations

import asyncio
import math
import re
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import KEYS, FakeUpstream, make_table
from procs import serving
from redis_server import RedisServer, redis_server

from routectl.table import dump_table

__all__ = ["redis_server"]  # the fixture, used by name

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LIMITS_YAML = """
limits:
  users:
    alice: {requests_per_minute: 60}
    bob: {tokens_per_minute: 1000}
    carol: {requests_per_minute: 1000000}
  organizations:
    acme: {requests_per_minute: 1000000, fail: closed}
"""
USAGE_CHUNK = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"up",'
    b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":400,"total_tokens":412}}\n\n'
)
BODY = {"model": "echo/e1", "messages": [{"role": "user", "content": "hello"}]}


async def _post(
    session: aiohttp.ClientSession, port: int, who: str, body: dict[str, Any] = BODY
) -> tuple[int, dict[str, str], float]:
    started = time.perf_counter()
    async with session.post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {KEYS[who]}"},
    ) as resp:
        await resp.read()
        return resp.status, dict(resp.headers), time.perf_counter() - started


async def _burst(ports: tuple[int, int], n: int) -> list[tuple[int, dict[str, str], float]]:
    """n concurrent requests of alice, alternating between the two servers."""
    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(_post(session, ports[i % 2], "alice") for i in range(n)))


async def _load(
    ports: tuple[int, int], who: str, seconds: float, workers: int = 8
) -> list[tuple[int, dict[str, str], float]]:
    out: list[tuple[int, dict[str, str], float]] = []
    deadline = time.monotonic() + seconds
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def worker(i: int) -> None:
            while time.monotonic() < deadline:
                out.append(await _post(session, ports[i % 2], who))

        await asyncio.gather(*(worker(i) for i in range(workers)))
    return out


def _metric(port: int, name: str, labels: str) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    found = re.search(rf"^{name}\{{{labels}\}} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_two_servers_share_limits_through_redis(
    tmp_path: Path, fake: FakeUpstream, redis_server: RedisServer
) -> None:
    fake.stream_chunks = [*fake.stream_chunks[:-1], USAGE_CHUNK, fake.stream_chunks[-1]]
    table = tmp_path / "table.json"
    table.write_bytes(dump_table(make_table(fake.port, collections=LIMITS_YAML))[0])
    redis = ("--redis-url", redis_server.url)
    with (
        serving(table, tmp_path / "a.log", *redis) as a,
        serving(table, tmp_path / "b.log", *redis) as b,
    ):
        ports = (a.port, b.port)

        # 1. 60 per minute across both, 150 concurrent requests alternating between them:
        # exactly 60 pass
        started = time.time()
        results = asyncio.run(_burst(ports, 150))
        statuses = Counter(status for status, _, _ in results)
        assert statuses == {200: 60, 429: 90}, statuses
        # and a server that admitted fewer than 60 itself refuses too: the count is shared
        admitted = Counter(i % 2 for i, (s, _, _) in enumerate(results) if s == 200)
        refusing = Counter(i % 2 for i, (s, _, _) in enumerate(results) if s == 429)
        assert any(admitted[i] < 60 and refusing[i] for i in (0, 1)), (admitted, refusing)
        more = asyncio.run(_burst((b.port, b.port), 5))
        assert {s for s, _, _ in more} == {429}
        waits = {int(h["Retry-After"]) for s, h, _ in results if s == 429}
        # all 60 were booked within the burst's first second: they leave the window one minute
        # after it, so every refusal waits what is left of that minute
        elapsed = time.time() - started
        assert waits <= set(range(math.floor(60 - elapsed - 1), 61)), (waits, elapsed)
        assert all(h["x-ratelimit-remaining-requests"] == "0" for s, h, _ in results if s == 429)

        # 2. a token limit settled from a stream's usage: streamed through A, seen by B
        stream = {**BODY, "model": "fake/m1", "stream": True}

        async def stream_then_ask() -> tuple[dict[str, str], dict[str, str]]:
            async with aiohttp.ClientSession() as session:
                _, first, _ = await _post(session, a.port, "bob", stream)
                await asyncio.sleep(0.3)  # the settlement follows the answer
                _, second, _ = await _post(session, b.port, "bob")
                return first, second

        first, second = asyncio.run(stream_then_ask())
        assert first["x-ratelimit-remaining-tokens"] == str(1000 - 5)  # the estimate
        assert second["x-ratelimit-remaining-tokens"] == str(1000 - 412 - 5)  # the usage

        # 3. Redis killed mid-test: carol (fail open) is served, acme's members (fail closed)
        # get 503 limits_unavailable; nobody waits longer than the timeout
        redis_server.kill()
        served = asyncio.run(_load(ports, "carol", 2.0))
        refused = asyncio.run(_load(ports, "bob", 0.5, workers=2))
        assert {s for s, _, _ in served} == {200}
        assert all("x-ratelimit-limit-requests" not in h for _, h, _ in served)  # unknown now
        assert {s for s, _, _ in refused} == {503}
        latencies = sorted(t for _, _, t in served + refused)
        p99 = latencies[int(len(latencies) * 0.99)]
        print(
            f"Redis down: {len(latencies)} requests, p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
        )
        assert p99 < 0.3 and latencies[-1] < 1.0  # the 100 ms timeout bounds even the first
        allowed = sum(
            _metric(p, "routectl_limit_backend_errors_total", 'outcome="allowed"') for p in ports
        )
        assert allowed == len(served)

        # 4. Redis back (empty): counting resumes within a second
        redis_server.start()
        time.sleep(1.2)
        back = asyncio.run(_load(ports, "carol", 0.3, workers=2))
        assert back[-1][1]["x-ratelimit-limit-requests"] == "1000000"
