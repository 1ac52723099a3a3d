"""The limiter against both backends, the in-process one and a real Redis, on an injected clock:
the same scenarios, the same answers."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import base_yaml
from prometheus_client import CollectorRegistry
from redis_server import RedisServer, redis_server

from routectl.compiler import build_table
from routectl.runtime.errors import RoutingError
from routectl.runtime.index import TableIndex
from routectl.runtime.limits import InProcessBackend, Limiter
from routectl.runtime.limits.backend import Outcome
from routectl.runtime.limits.limiter import duration
from routectl.runtime.limits.redis_backend import RedisBackend
from routectl.runtime.plan import RequestFacts
from routectl.runtime.resolve import resolve
from routectl.table import RoutingTable

__all__ = ["redis_server"]  # the fixture, used by name

# 2027-01-15 12:00:00 UTC: a slot boundary, half a day before midnight
T0 = datetime(2027, 1, 15, 12, 0, 0, tzinfo=UTC).timestamp()

LIMITS = """
limits:
  users:
    alice: {requests_per_minute: 60}
    bob: {tokens_per_minute: 1000}
    carol: {usd_per_day: 0.01, usd_per_month: 1.0}
  organizations:
    acme: {requests_per_minute: 100}
"""


class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


def table(limits: str = LIMITS) -> RoutingTable:
    return build_table(text=base_yaml(9) + limits)


@pytest.fixture(params=["memory", "redis", "redis-py"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Limiter, Clock]]:
    """Both backends; Redis through the lean client (`redis://`'s default) and redis-py."""
    clock = Clock()
    if request.param == "memory":
        backend: Any = InProcessBackend()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        client = "lean" if request.param == "redis" else "redis-py"
        backend = RedisBackend(server.url, timeout_s=1.0, client=client)
        assert backend.client_name == client
    lim = Limiter(backend, CollectorRegistry(), clock)
    yield lim, clock
    await lim.close()


async def admit(
    lim: Limiter, t: RoutingTable, who: str, model: str = "fake/m1", **facts: Any
) -> Any:
    index = TableIndex(t)
    caller = index.callers[who]
    route = resolve(index, caller, model).route
    rules = lim.rules_for(t, caller, route)
    assert rules is not None
    return await lim.admit(rules, RequestFacts(**facts))


async def refusal(lim: Limiter, t: RoutingTable, who: str, **facts: Any) -> RoutingError:
    with pytest.raises(RoutingError) as info:
        await admit(lim, t, who, **facts)
    return info.value


pytestmark = pytest.mark.e2e  # the redis half starts a server


async def test_60_per_minute_admits_60_and_the_61st_waits_for_the_window(
    limiter: tuple[Limiter, Clock],
) -> None:
    lim, clock = limiter
    t = table()
    remaining = []
    for _ in range(60):
        ticket = await admit(lim, t, "alice")
        remaining.append(int(ticket.headers["x-ratelimit-remaining-requests"]))
    assert remaining == list(range(59, -1, -1))
    assert ticket.headers["x-ratelimit-limit-requests"] == "60"
    assert ticket.headers["x-ratelimit-reset-requests"] == "1m0s"
    clock.t += 20.5
    err = await refusal(lim, t, "alice")
    assert (err.status, err.code) == (429, "rate_limited")
    # the 60 were booked in the slot of T0: they leave the window at T0 + 60
    assert err.headers["Retry-After"] == "40"
    assert err.headers["retry-after-ms"] == "39500"
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert err.extra["details"]["limit"] == "requests_per_minute"
    assert "60 requests per minute reached for user alice" in err.message
    clock.t = T0 + 59.99
    await refusal(lim, t, "alice")
    clock.t = T0 + 60
    await admit(lim, t, "alice")


async def test_the_window_slides_slot_by_slot(limiter: tuple[Limiter, Clock]) -> None:
    lim, clock = limiter
    t = table()
    for _ in range(30):
        await admit(lim, t, "alice")
    clock.t += 30
    for _ in range(30):
        await admit(lim, t, "alice")
    clock.t += 15
    assert (await refusal(lim, t, "alice")).headers["Retry-After"] == "15"
    clock.t = T0 + 60  # the first 30 left; the last 30 stay until T0 + 90
    for _ in range(30):
        await admit(lim, t, "alice")
    await refusal(lim, t, "alice")


async def test_concurrent_checks_admit_exactly_the_limit(limiter: tuple[Limiter, Clock]) -> None:
    lim, _ = limiter
    t = table()
    results = await asyncio.gather(
        *(admit(lim, t, "alice") for _ in range(150)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 60
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 90
    assert all(isinstance(r, RoutingError) and r.code == "rate_limited" for r in refused)


async def test_an_organization_limit_counts_every_member_and_refusals_book_nothing(
    limiter: tuple[Limiter, Clock],
) -> None:
    lim, clock = limiter
    t = table()
    for _ in range(50):
        await admit(lim, t, "bob")  # bob: acme's limit (and his tokens)
    for _ in range(50):
        await admit(lim, t, "alice")
    err = await refusal(lim, t, "alice")
    assert err.extra["details"]["scope"] == "organization"
    assert "100 requests per minute reached for organization acme" in err.message
    # the refused requests did not count on alice's own limit: she has used 50 of 60
    clock.t += 60
    ticket = await admit(lim, t, "alice")
    assert ticket.headers["x-ratelimit-remaining-requests"] == "59"


async def test_tokens_are_reserved_from_the_estimate_and_settled_from_usage(
    limiter: tuple[Limiter, Clock],
) -> None:
    lim, clock = limiter
    t = table()
    first = await admit(lim, t, "bob", prompt_tokens=300, max_output_tokens=300)
    assert first.headers["x-ratelimit-remaining-tokens"] == "400"
    err = await refusal(lim, t, "bob", prompt_tokens=300, max_output_tokens=300)
    assert err.code == "rate_limited" and err.extra["details"]["limit"] == "tokens_per_minute"
    # the answer used 150 tokens, not 600: 450 come back
    lim.settle(first, {"prompt_tokens": 100, "completion_tokens": 50}, failed=False)
    await lim.drain()
    second = await admit(lim, t, "bob", prompt_tokens=300, max_output_tokens=300)
    assert second.headers["x-ratelimit-remaining-tokens"] == "250"
    # a failed request without usage used nothing: its whole reservation comes back
    lim.settle(second, {}, failed=True)
    await lim.drain()
    third = await admit(lim, t, "bob", prompt_tokens=10)
    assert third.headers["x-ratelimit-remaining-tokens"] == "840"
    # usage above the estimate is booked too (the window goes over; the next ones wait)
    lim.settle(third, {"prompt_tokens": 900, "completion_tokens": 100}, failed=False)
    await lim.drain()
    err = await refusal(lim, t, "bob", prompt_tokens=1)
    assert err.headers["x-ratelimit-remaining-tokens"] == "0"
    clock.t += 61
    await admit(lim, t, "bob", prompt_tokens=1)


async def test_a_request_larger_than_the_token_limit_is_refused_without_retry_after(
    limiter: tuple[Limiter, Clock],
) -> None:
    lim, _ = limiter
    err = await refusal(lim, table(), "bob", prompt_tokens=5000)
    assert err.code == "rate_limited" and "Retry-After" not in err.headers
    assert "needs about 5000 tokens, more than the 1000 tokens per minute limit" in err.message


async def test_a_daily_budget_refuses_until_the_utc_day_ends(
    limiter: tuple[Limiter, Clock],
) -> None:
    lim, clock = limiter
    t = table()
    # fake/m1: $3 in, $6 out per million tokens; 1000 + 500 tokens: $0.006 estimated
    ticket = await admit(lim, t, "carol", prompt_tokens=1000, max_output_tokens=500)
    assert ticket.reserved_nano == 6_000_000
    await admit(lim, t, "carol", prompt_tokens=1000)  # $0.003: 0.009 of 0.01
    err = await refusal(lim, t, "carol", prompt_tokens=1000)
    assert (err.status, err.code) == (429, "quota_exceeded")
    assert err.headers["Retry-After"] == str(12 * 3600)  # midnight UTC
    assert err.extra["details"]["limit"] == "usd_per_day"
    # the answer cost $0.001 only: the settlement gives $0.005 back
    lim.settle(ticket, {"prompt_tokens": 200, "completion_tokens": 66, "cost": 0.001}, False)
    await lim.drain()
    await admit(lim, t, "carol", prompt_tokens=1000)
    # free models spend nothing: a budget never refuses them
    for _ in range(3):
        await admit(lim, t, "carol", model="echo/e1", prompt_tokens=10**6)
    clock.t = T0 + 12 * 3600  # the next UTC day: a new daily budget, the month's goes on
    await admit(lim, t, "carol", prompt_tokens=1000)


async def test_a_monthly_budget_waits_for_the_next_month(limiter: tuple[Limiter, Clock]) -> None:
    lim, clock = limiter
    t = table(LIMITS.replace("usd_per_day: 0.01, usd_per_month: 1.0", "usd_per_month: 0.01"))
    await admit(lim, t, "carol", prompt_tokens=3000)  # $0.009
    err = await refusal(lim, t, "carol", prompt_tokens=1000)
    end = datetime(2027, 2, 1, tzinfo=UTC).timestamp()
    assert err.code == "quota_exceeded"
    assert err.headers["Retry-After"] == str(round(end - clock.t))


def test_durations_read_as_openai_writes_them() -> None:
    assert [duration(s) for s in (0.02, 1, 1.5, 59.96, 60, 360, 3599.6)] == [
        "20ms",
        "1s",
        "1.5s",
        "60s",
        "1m0s",
        "6m0s",
        "60m0s",
    ]


def test_the_headers_name_the_tightest_window_and_a_window_over_its_limit_counts_zero() -> None:
    # two token windows (a user's, an organization's); `_headers` picks the one with the least
    # remaining, a window over its limit (settled usage past it) counts 0, ties keep the first
    lim = Limiter(InProcessBackend(), CollectorRegistry(), Clock())
    names = ("x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens")
    rules: Any = SimpleNamespace(headers=((names, ((0, 1000, "1000"), (1, 500, "500"))),))
    slot = math.floor(T0 * 60 / 60)

    def headers(used: list[int], oldest: list[int]) -> dict[str, str]:
        outcome = Outcome(True, slot, used, oldest, [-1, -1])
        return lim._headers(rules, outcome, T0)

    tight = headers([100, 450], [slot - 30, slot - 59])  # 900 left against 50: the second
    assert tight == {names[0]: "500", names[1]: "50", names[2]: "1s"}
    over = headers([1200, 900], [slot - 10, slot - 1])  # both past their limit: the first
    assert over == {names[0]: "1000", names[1]: "0", names[2]: "50s"}
    empty = headers([0, 0], [-1, -1])  # nothing counted: the smaller limit, reset now
    assert empty == {names[0]: "500", names[1]: "500", names[2]: "0ms"}


async def test_redis_down_fails_open_or_closed_per_limit_fast_and_recovers(
    redis_server: RedisServer,
) -> None:
    import time

    registry = CollectorRegistry()
    backend = RedisBackend(redis_server.url, timeout_s=0.1, retry_after_s=0.5)
    lim = Limiter(backend, registry, Clock())
    t_open = table()
    t_closed = table(
        LIMITS.replace("{requests_per_minute: 60}", "{requests_per_minute: 60, fail: closed}")
    )
    assert await admit(lim, t_open, "alice") is not None
    redis_server.kill()
    took = []
    for _ in range(20):
        started = time.perf_counter()
        assert await admit(lim, t_open, "alice") is None  # fail open: admitted, no headers
        took.append(time.perf_counter() - started)
    # the first call finds the connection gone; the others do not even try for 0.5 s
    assert max(took) < 0.35, took
    allowed = registry.get_sample_value(
        "routectl_limit_backend_errors_total", {"outcome": "allowed"}
    )
    assert allowed == 20
    err = await refusal(lim, t_closed, "alice")
    assert (err.status, err.code, err.headers["Retry-After"]) == (503, "limits_unavailable", "1")
    assert (
        registry.get_sample_value("routectl_limit_backend_errors_total", {"outcome": "refused"})
        == 1
    )
    redis_server.start()  # back, empty (no persistence), on the same port
    await asyncio.sleep(0.6)
    ticket = await admit(lim, t_closed, "alice")
    assert ticket is not None and ticket.headers["x-ratelimit-remaining-requests"] == "59"
    await lim.close()


async def test_a_check_never_waits_for_the_corrections_batch(redis_server: RedisServer) -> None:
    import time

    lim = Limiter(RedisBackend(redis_server.url, timeout_s=1.0), CollectorRegistry(), Clock())
    t = table()
    waits = []
    for _ in range(20):
        ticket = await admit(lim, t, "bob", prompt_tokens=10)
        lim.settle(ticket, {"prompt_tokens": 5, "completion_tokens": 5}, failed=False)
        started = time.perf_counter()
        await admit(lim, t, "bob", prompt_tokens=10)  # goes at once, the corrections with it
        waits.append(time.perf_counter() - started)
    # the corrections' own timer is 50 ms: a check that waited for it would wait ~50 ms every
    # time; the median (not the max) so that one scheduling hiccup on a busy machine is no failure
    assert sorted(waits)[len(waits) // 2] < 0.03, waits
    await lim.drain()
    last = await admit(lim, t, "bob", prompt_tokens=10)
    # 20 settled at 10, 20 reserved at 10, this one: 410 of 1000
    assert last.headers["x-ratelimit-remaining-tokens"] == str(1000 - 410)
    await lim.close()
