"""A scriptable faulty upstream (a real aiohttp server on 127.0.0.1) and helpers to start a
gateway against it with any create_app options; used by the findings, fault-injection, access
matrix and HTTP-fuzz tests.

Actions beyond FakeUpstream's ("ok", "429:<retry-after>", "500", "400", "401", "hang", "drop",
"slow", "stall"):
  "redirect:<status>"  a 3xx to the trap server (which records any request it gets)
  "403"                403 whose body quotes the key, as some upstreams do
  "401leak"            401 whose body quotes the key
  "html"               200 text/html (a captive portal, a proxy's error page)
  "notobject"          200 application/json holding a list
  "big:<bytes>"        200 JSON padded to that size
  "bigerror:<bytes>"   400 JSON padded to that size
  "bigevent:<bytes>"   a stream whose second event is that large
  "slowfirst:<s>"      the answer after s seconds
  "503"/"502"/"504"    that status
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from conftest import ENV, FakeClock, LoopThread, base_yaml

from routectl.compiler import build_table
from routectl.runtime.app import create_app
from routectl.runtime.connections import ServerLimits
from routectl.runtime.keys import RUNTIME
from routectl.runtime.served import Runtime
from routectl.runtime.server import listen
from routectl.table import RoutingTable

__all__ = ["FaultUpstream", "Running", "Trap", "start_app"]

_MINE = frozenset(
    (
        "redirect",
        "403",
        "401leak",
        "html",
        "notobject",
        "big",
        "bigerror",
        "bigevent",
        "slowfirst",
        "502",
        "503",
        "504",
    )
)


@dataclass
class Trap:
    """Where redirects point: records every request that reaches it."""

    port: int = 0
    hits: list[tuple[str, str, bytes, dict[str, str]]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.hits.append(
            (request.method, request.path, await request.read(), dict(request.headers))
        )
        return web.json_response(
            {"id": "trap", "object": "chat.completion", "model": "trap", "choices": []}
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


def _padded(size: int, *, error: bool = False) -> bytes:
    pad = "x" * max(size, 0)
    if error:
        return orjson.dumps({"error": {"message": "bad", "type": "fake", "pad": pad}})
    return orjson.dumps(
        {
            "id": "chatcmpl-big",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": pad},
                    "finish_reason": "stop",
                }
            ],
        }
    )


class FaultUpstream:
    """FakeUpstream's script with more faults; `trap` receives redirected requests."""

    def __init__(self, fake: Any, trap: Trap) -> None:
        self.fake = fake
        self.trap = trap

    @property
    def port(self) -> int:
        port: int = self.fake.port
        return port

    @property
    def script(self) -> dict[str, list[str]]:
        script: dict[str, list[str]] = self.fake.script
        return script

    @property
    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self.fake.calls
        return calls

    def _peek(self, key: str, model: str) -> str | None:
        for k in (f"{key}/{model}", model):
            queue = self.script.get(k)
            if queue:
                return queue[0]
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()  # aiohttp keeps the bytes: the fake reads them again
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        model = body["model"]
        peeked = self._peek(key, model)
        if peeked is None or peeked.partition(":")[0] not in _MINE:
            result: web.StreamResponse = await self.fake.handle(request)
            return result
        action = self.fake.next_action(key, model)
        self.calls.append({"key": key, "model": model, "body": body, "action": action})
        name, _, arg = action.partition(":")
        if name == "redirect":
            location = f"http://127.0.0.1:{self.trap.port}/elsewhere/chat/completions"
            return web.Response(status=int(arg or 307), headers={"Location": location})
        if name in ("403", "401leak"):
            status = 403 if name == "403" else 401
            return web.json_response(
                {
                    "error": {
                        "message": f"Incorrect API key provided: {key}",
                        "code": "invalid_api_key",
                    }
                },
                status=status,
            )
        if name == "html":
            return web.Response(text="<html>login</html>", content_type="text/html")
        if name == "notobject":
            return web.json_response([1, 2, 3])
        if name == "big":
            return web.Response(body=_padded(int(arg)), content_type="application/json")
        if name == "bigerror":
            return web.Response(
                body=_padded(int(arg), error=True), status=400, content_type="application/json"
            )
        if name == "bigevent":
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            await resp.write(self.fake.stream_chunks[0])
            await asyncio.sleep(0.05)  # the first event reaches the client on its own
            await resp.write(b"data: " + b"x" * int(arg) + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
            return resp
        if name == "slowfirst":
            await asyncio.sleep(float(arg))
            self.script.setdefault(f"{key}/{model}", []).insert(0, "ok")
            result = await self.fake.handle(request)
            self.calls.pop()  # the fake's own record of the same call
            return result
        return web.json_response({"error": {"message": f"fake {name}"}}, status=int(name))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        return app


@dataclass
class Running:
    """A gateway served by runtime.server.listen (the production site: guarded connections)."""

    port: int
    app: web.Application
    clock: FakeClock
    table: RoutingTable

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]


def start_app(
    loop_thread: LoopThread,
    port: int,
    runners: list[web.AppRunner],
    *,
    parts: dict[str, str] | None = None,
    table: RoutingTable | None = None,
    environ: dict[str, str] | None = None,
    **options: Any,
) -> Running:
    """create_app(**options) for the base config (plus YAML parts) against `port`, listening
    through runtime.server.listen like `routectl serve`."""
    table = table or build_table(text=base_yaml(port, **(parts or {})))
    clock = FakeClock()
    app = create_app(table, rng=random.Random(7), clock=clock, environ=environ or ENV, **options)

    async def go() -> tuple[web.AppRunner, int]:
        return await listen(app, "127.0.0.1", 0, ServerLimits())

    runner, bound = loop_thread.run(go())
    runners.append(runner)
    return Running(bound, app, clock, table)


def stop_all(loop_thread: LoopThread, runners: list[web.AppRunner]) -> Iterator[None]:
    """A fixture body: yield, then stop every runner."""
    yield
    for runner in runners:
        loop_thread.stop(runner)
