"""The runtime's protocol serves a connection's requests with each handler awaited in place
(runtime/inline_start.py): on a real socket, keep-alive, a handler that fails, a client that goes
away mid-handler (cancelled, as `handler_cancellation` asks), and the connection's requests all
in one task."""

from __future__ import annotations

import asyncio
import inspect
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
from aiohttp import ClientSession, ClientTimeout, web, web_protocol

from routectl.runtime.badrequests import _QuietHandler, quiet_handlers
from routectl.runtime.inline_start import _TASK_PER_REQUEST, IN_FLIGHT, inline_start

_REWRITABLE = sys.version_info < (3, 12) and _TASK_PER_REQUEST in textwrap.dedent(
    inspect.getsource(web_protocol.RequestHandler.start)
)


def test_the_protocol_uses_the_rewrite_exactly_when_the_installed_aiohttp_allows_it() -> None:
    if _REWRITABLE:
        start = inline_start()
        assert start is not None
        # the compiled loop names no task factory and yields once per request
        names = start.__code__.co_names
        assert "create_task" not in names and "Task" not in names and "sleep" in names
        assert "_IN_FLIGHT" in names  # the turn is taken only while another request is served
        assert _QuietHandler.start.__code__.co_names == names
        assert "create_task" in web_protocol.RequestHandler.start.__code__.co_names
        unyielding = inline_start(yield_first=False)  # the measured variant, not served
        assert unyielding is not None and "sleep" not in unyielding.__code__.co_names
    else:  # another aiohttp or CPython 3.12+: aiohttp's own loop, unchanged
        assert inline_start() is None
        assert _QuietHandler.start is web_protocol.RequestHandler.start


class _Seen:
    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[object] | None] = []
        self.in_flight: list[int] = []  # IN_FLIGHT as each handler saw it
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.entered = asyncio.Event()


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, _Seen]]:
    seen = _Seen()

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        seen.tasks.append(asyncio.current_task())
        seen.in_flight.append(IN_FLIGHT[0])
        if request.path == "/held":
            await seen.release.wait()
        if request.path == "/fail":
            raise RuntimeError("a handler that fails")
        if request.path == "/hang":
            seen.entered.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                seen.cancelled.set()
                raise
        body = await request.read()
        return web.Response(body=b"echo:" + body)

    loop = asyncio.get_running_loop()
    server = web.Server(handler, handler_cancellation=True)
    listener = await loop.create_server(quiet_handlers(server), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        listener.close()
        await server.shutdown(1.0)
        await listener.wait_closed()


async def test_keep_alive_requests_are_answered_in_order_in_the_connections_task(
    served: tuple[str, _Seen],
) -> None:
    url, seen = served
    async with ClientSession() as client:
        for i in range(5):
            async with client.post(f"{url}/echo", data=f"n{i}".encode()) as resp:
                assert resp.status == 200
                assert await resp.read() == f"echo:n{i}".encode()
        # a failing handler: aiohttp's 500, and the server goes on serving
        async with client.get(f"{url}/fail") as resp:
            assert resp.status == 500
        async with client.post(f"{url}/echo", data=b"after") as resp:
            assert await resp.read() == b"echo:after"
    first = seen.tasks[0]
    assert first is not None
    if _REWRITABLE:  # one connection, one task: no task per request
        assert all(task is first for task in seen.tasks[:5])
        # each ran alone; the failing one was counted out as well
        assert seen.in_flight == [1] * 7 and IN_FLIGHT[0] == 0
    else:
        assert len({id(task) for task in seen.tasks[:5]}) == 5


async def test_a_client_that_goes_away_cancels_its_handler(served: tuple[str, _Seen]) -> None:
    url, seen = served
    async with ClientSession(timeout=ClientTimeout(total=0.3)) as client:
        with pytest.raises(asyncio.TimeoutError):
            async with client.get(f"{url}/hang") as resp:
                await resp.read()
    await asyncio.wait_for(seen.entered.wait(), 2.0)
    await asyncio.wait_for(seen.cancelled.wait(), 2.0)
    # and a new connection is served as before
    async with ClientSession() as client, client.post(f"{url}/echo", data=b"x") as resp:
        assert await resp.read() == b"echo:x"
    if _REWRITABLE:  # the cancelled handler was counted out: the next one ran alone
        assert seen.in_flight[-1] == 1 and IN_FLIGHT[0] == 0


async def test_a_request_takes_a_loop_turn_only_while_another_is_served(
    served: tuple[str, _Seen], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen = served
    turns: list[float] = []  # the loop's own asyncio.sleep(0) calls
    real_sleep = asyncio.sleep

    async def sleep(delay: float, result: object = None) -> object:
        if delay == 0:
            turns.append(delay)
        return await real_sleep(delay, result)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    async with ClientSession() as one, ClientSession() as two:  # two connections
        async with one.post(f"{url}/echo", data=b"alone") as resp:
            assert await resp.read() == b"echo:alone"
        alone = len(turns)
        held = asyncio.ensure_future(one.get(f"{url}/held"))
        while len(seen.in_flight) < 2:
            await real_sleep(0.01)
        async with two.post(f"{url}/echo", data=b"y") as resp:  # served while /held waits
            assert await resp.read() == b"echo:y"
        seen.release.set()
        async with await held as resp:
            assert resp.status == 200
    if _REWRITABLE:
        # alone: no turn; the third started while /held ran, after its loop turn; all left
        assert alone == 0 and len(turns) == 1
        assert seen.in_flight == [1, 1, 2] and IN_FLIGHT[0] == 0
