"""The lean Redis client of the limits (`limits/resp.py`) against a real redis-server: replies in
order when pipelined, error replies, a script the server forgot, AUTH and SELECT from the URL, a
connection Redis drops, and a Redis that stops answering (the timeout, then recovery)."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from redis_server import RedisServer, redis_server
from test_limits import LIMITS, Clock, admit, table

from routectl.runtime.errors import RoutingError
from routectl.runtime.limits import Limiter
from routectl.runtime.limits.redis_backend import RedisBackend
from routectl.runtime.limits.resp import LeanRedis, RespError, pack, supports

__all__ = ["redis_server"]  # the fixture, used by name

pytestmark = pytest.mark.e2e  # starts a redis-server


def test_a_script_call_is_the_command_pack_would_write() -> None:
    client = LeanRedis("redis://127.0.0.1:6379/0", 0.1)
    keys = ["{routectl}:user:a:requests", "{routectl}:org:b:requests"]
    args: list[str | int] = [60, 1000, "1 0 w 5"]
    for name, word in (("EVALSHA", "a" * 40), ("EVAL", "return 1")):
        verb = pack(name, word)[len(b"*2\r\n") :]  # the two first words, as `pack` writes them
        for _ in range(2):  # the second time the key names come from the client's cache
            got = client.script_command(verb, keys, args)
            assert got == pack(name, word, len(keys), *keys, *args)


def test_pack_is_resp_and_only_plain_redis_urls_are_spoken() -> None:
    assert pack("SET", "k", 12, b"v\r\n") == (
        b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\nv\r\n\r\n"
    )
    assert pack("PING") == b"*1\r\n$4\r\nPING\r\n"
    assert supports("redis://127.0.0.1:6379/0")
    assert not supports("rediss://host:6380/0")
    assert not supports("unix:///run/redis.sock")
    with pytest.raises(ValueError):
        LeanRedis("rediss://host", 0.1)


async def test_pipelined_calls_get_their_own_replies_in_order(redis_server: RedisServer) -> None:
    client = LeanRedis(redis_server.url, 1.0)
    replies = await asyncio.gather(*(client.call(pack("INCRBY", "n", i)) for i in range(1, 101)))
    assert replies == [i * (i + 1) // 2 for i in range(1, 101)]
    assert await client.call(pack("GET", "n")) == b"5050"
    with pytest.raises(RespError, match=r"WRONGTYPE|not an integer"):
        await client.call(pack("HSET", "n", "f", "v"))
    assert await client.call(pack("PING")) == b"PONG"  # the connection goes on after an error
    await client.aclose()


def test_the_client_runs_on_uvloop_too(redis_server: RedisServer) -> None:
    uvloop = pytest.importorskip("uvloop")  # `serve` runs on it when installed

    async def calls() -> list[object]:
        client = LeanRedis(redis_server.url, 1.0)
        try:
            return list(await asyncio.gather(*(client.call(pack("INCR", "u")) for _ in range(3))))
        finally:
            await client.aclose()

    assert uvloop.run(calls()) == [1, 2, 3]


async def test_a_script_the_server_forgot_is_sent_again(redis_server: RedisServer) -> None:
    client = LeanRedis(redis_server.url, 1.0)
    script = "return tonumber(ARGV[1]) + 1"
    sha = await client.call(pack("SCRIPT", "LOAD", script))
    assert await client.evalsha(sha.decode(), script, [], [41]) == 42
    await client.call(pack("SCRIPT", "FLUSH"))
    assert await client.evalsha(sha.decode(), script, [], [1]) == 2  # NOSCRIPT -> EVAL
    assert await client.call(pack("SCRIPT", "EXISTS", sha)) == [1]  # EVAL cached it again
    with pytest.raises(RespError):
        await client.evalsha("0" * 40, "return (", [], [])  # a script that does not compile
    await client.aclose()


async def test_auth_and_database_come_from_the_url(redis_server: RedisServer) -> None:
    with redis_server.client() as admin:
        admin.config_set("requirepass", "s3cret:/@x")
        try:
            url = f"redis://:s3cret%3A%2F%40x@127.0.0.1:{redis_server.port}/3"
            client = LeanRedis(url, 1.0)
            assert await client.call(pack("SET", "where", "db3")) == b"OK"
            admin.execute_command("AUTH", "s3cret:/@x")
            admin.execute_command("SELECT", "3")
            assert admin.get("where") == "db3"
            await client.aclose()
            wrong = LeanRedis(f"redis://:nope@127.0.0.1:{redis_server.port}/0", 1.0)
            with pytest.raises(RespError, match=r"WRONGPASS|invalid"):
                await wrong.call(pack("PING"))
            await wrong.aclose()
        finally:
            admin.config_set("requirepass", "")


async def test_a_dropped_connection_fails_the_call_in_flight_and_the_next_one_reconnects(
    redis_server: RedisServer,
) -> None:
    client = LeanRedis(redis_server.url, 5.0)
    assert await client.call(pack("CLIENT", "SETNAME", "lean")) == b"OK"
    first = await client.call(pack("CLIENT", "ID"))
    waiting = asyncio.ensure_future(client.call(pack("BLPOP", "nothing", 3)))  # in flight
    await asyncio.sleep(0.05)
    with redis_server.client() as admin:
        assert admin.client_kill_filter(_id=first) == 1
    with pytest.raises(OSError):
        await asyncio.wait_for(waiting, 1.0)
    assert await client.call(pack("PING")) == b"PONG"  # a new connection
    assert await client.call(pack("CLIENT", "ID")) != first
    await client.aclose()
    down = LeanRedis("redis://127.0.0.1:1/0", 0.1)  # nothing listens: refused at once
    with pytest.raises(OSError):
        await down.call(pack("PING"))


async def test_a_redis_that_stops_answering_fails_open_within_the_timeout_and_recovers(
    redis_server: RedisServer,
) -> None:
    registry = CollectorRegistry()
    backend = RedisBackend(redis_server.url, timeout_s=0.1, retry_after_s=0.3)
    assert backend.client_name == "lean"
    lim = Limiter(backend, registry, Clock())
    t = table()
    assert await admit(lim, t, "alice") is not None
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)  # alive, connected, silent
    try:
        took = []
        for _ in range(10):
            started = time.perf_counter()
            assert await admit(lim, t, "alice") is None  # fail open
            took.append(time.perf_counter() - started)
        assert max(took) < 0.35, took  # the first waits for the 100 ms timeout (+ load)
        assert (
            registry.get_sample_value("routectl_limit_backend_errors_total", {"outcome": "allowed"})
            == 10
        )
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    await asyncio.sleep(0.35)
    # a fresh connection: the stalled one's late reply reaches nobody (whether Redis still ran
    # the check it had received is Redis's business: a timed-out call may have been applied)
    ticket = await admit(lim, t, "alice")
    assert ticket is not None and ticket.headers["x-ratelimit-remaining-requests"] in ("58", "57")
    await lim.close()


async def test_the_batch_script_runs_through_both_clients_alike(redis_server: RedisServer) -> None:
    # the same batch, the same answer: the lean client's EVALSHA and redis-py's Script
    lean = RedisBackend(redis_server.url, timeout_s=1.0, client="lean")
    py = RedisBackend(redis_server.url, timeout_s=1.0, client="redis-py")
    # no correction; one counter (key 1, a window of limit 5); one request at slot 100 charging
    # it 1
    args: list[int | str] = [60, 61_000, "0 1 1 w 5 0 100 1 1 1"]
    # admitted, used after booking, the oldest counted slot, no free slot (it fitted)
    assert await lean._call(["{routectl}:a"], args) == [1, 1, 100, -1]
    assert await py._call(["{routectl}:a"], args) == [1, 2, 100, -1]
    await lean.close()
    await py.close()


async def test_a_check_cancelled_in_flight_leaves_the_backend_usable(
    redis_server: RedisServer,
) -> None:
    # alone, a check makes the Redis call itself; its request going away mid-call (a client
    # that disconnects) must neither wedge the batching nor strand the checks behind it
    registry = CollectorRegistry()
    lim = Limiter(RedisBackend(redis_server.url, timeout_s=1.0), registry, Clock())
    t = table()
    first = await admit(lim, t, "bob", prompt_tokens=10)
    lim.settle(first, {"prompt_tokens": 5, "completion_tokens": 50}, failed=False)
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        alone = asyncio.ensure_future(admit(lim, t, "alice"))
        await asyncio.sleep(0.02)
        behind = [asyncio.ensure_future(admit(lim, t, "alice")) for _ in range(3)]
        await asyncio.sleep(0.02)
        alone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await alone
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    tickets = await asyncio.wait_for(asyncio.gather(*behind), 2.0)
    assert all(ticket is not None for ticket in tickets)
    # the correction that rode with the cancelled call is counted as lost, not sent twice
    assert (
        registry.get_sample_value("routectl_limit_backend_errors_total", {"outcome": "unsettled"})
        == 1
    )
    assert (await admit(lim, t, "alice")).headers["x-ratelimit-remaining-requests"] in (
        "55",
        "56",
    )
    await lim.close()


async def test_one_batch_checks_a_counter_under_each_limit_it_is_given(
    redis_server: RedisServer,
) -> None:
    # a batch writes each counter once; a table reloaded while checks wait can name the same
    # counter with another limit, and each check must be held to its own table's limit
    lim = Limiter(RedisBackend(redis_server.url, timeout_s=1.0), CollectorRegistry(), Clock())
    wide, narrow = (
        table(),
        table(LIMITS.replace("{requests_per_minute: 60}", "{requests_per_minute: 1}")),
    )
    assert wide.sha256 != narrow.sha256
    # the first check makes the call alone; the next two wait and leave together in the next
    results: tuple[Any, ...] = await asyncio.gather(
        admit(lim, wide, "alice"),
        admit(lim, wide, "alice"),
        admit(lim, narrow, "alice"),
        return_exceptions=True,
    )
    first, on_wide, on_narrow = results
    assert first.headers["x-ratelimit-remaining-requests"] == "59"
    assert on_wide.headers["x-ratelimit-remaining-requests"] == "58"
    assert isinstance(on_narrow, RoutingError) and on_narrow.code == "rate_limited"
    await lim.close()
