"""Runtime test fixtures: a loop thread hosting real servers, a scriptable fake upstream, tables."""

from __future__ import annotations

import asyncio
import hashlib
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from conformance import Answer, check_answers, record_answers

from routectl.compiler import build_table
from routectl.runtime.app import create_app
from routectl.runtime.front import FrontRunner
from routectl.runtime.keys import RUNTIME
from routectl.runtime.served import Runtime
from routectl.table import RoutingTable

KEYS = {"alice": "key-alice", "bob": "key-bob", "carol": "key-carol"}
ENV = {"ALICE_KEY": "sk-alice", "ACME_KEY": "sk-acme", "PLATFORM_KEY": "sk-platform"}


def digest(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def base_yaml(port: int, collections: str = "", connections: str = "", models: str = "") -> str:
    """A small config: alice and bob in org acme, carol alone; one fake openai provider at `port`."""
    return f"""
version: 1
defaults:
  cooldown_s: 30
  allowed_fails: 3
  max_attempts: 3
organizations:
  acme: {{display_name: Acme, members: [alice, bob]}}
users:
  alice: {{display_name: Alice, api_keys: ["{digest(KEYS["alice"])}"]}}
  bob: {{display_name: Bob, api_keys: ["{digest(KEYS["bob"])}"]}}
  carol: {{display_name: Carol, api_keys: ["{digest(KEYS["carol"])}"]}}
providers:
  fake: {{api: openai, base_url: "http://127.0.0.1:{port}/v1"}}
  echo: {{api: echo}}
models:
  fake/m1: {{context_window: 100000, pricing: {{input_per_mtok: 3, output_per_mtok: 6}}, capabilities: [tools], trust_level: 50}}
  fake/m2: {{context_window: 100000, pricing: {{input_per_mtok: 1, output_per_mtok: 2}}, capabilities: [tools, vision], trust_level: 60}}
  fake/m3: {{context_window: 100000, pricing: {{input_per_mtok: 0.5, output_per_mtok: 1}}, trust_level: 40}}
  fake/tiny: {{context_window: 50, trust_level: 40}}
  echo/e1: {{context_window: 100000, trust_level: 30, free: true}}
  echo/e2: {{context_window: 100000, trust_level: 30, free: true}}
{models}
connections:
  - {{id: alice-fake, owner: alice, provider: fake, models: [fake/m1], credentials: {{api_key_env: ALICE_KEY}}}}
  - {{id: acme-fake, owner: acme, provider: fake, models: [fake/m1, fake/m2, fake/m3, fake/tiny], credentials: {{api_key_env: ACME_KEY}}}}
  - {{id: platform-fake, owner: platform, provider: fake, models: [fake/m1, fake/m2, fake/m3], credentials: {{api_key_env: PLATFORM_KEY}}}}
  - {{id: platform-nokey, owner: platform, provider: fake, models: [fake/m3], credentials: {{api_key_env: UNSET_KEY_FOR_TESTS}}, priority: 1}}
  - {{id: platform-echo, owner: platform, provider: echo, models: [echo/e1, echo/e2]}}
{connections}
collections:
  auto-free:
    scope: system
    strategy: random
    aliases: ["auto(free)", auto-free]
    members: [{{model: echo/e1}}, {{model: echo/e2}}]
{collections}
"""


# A model too small for most prompts, served to everyone (platform): for no-models reasons.
SMALL_MODEL = "  fake/small: {context_window: 50, trust_level: 40}\n"
SMALL_CONNECTION = (
    "  - {id: platform-small, owner: platform, provider: fake, models: [fake/small],"
    " credentials: {api_key_env: PLATFORM_KEY}}\n"
)


def make_table(port: int = 9, **parts: str) -> RoutingTable:
    """Compile the base config (plus extra YAML parts) through the real compiler."""
    return build_table(text=base_yaml(port, **parts))


# ---------------------------------------------------------------- a loop in a thread


class LoopThread:
    """An event loop in a background thread: servers live here, sync SDK clients call from tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[[], Any]) -> Any:
        async def wrapper() -> Any:
            return fn()

        return self.run(wrapper())

    async def _start(self, app: web.Application) -> tuple[web.AppRunner, int]:
        # a routectl app is served by its front (runtime/front.py), like `routectl serve`
        make = FrontRunner if RUNTIME in app else web.AppRunner
        runner = make(app, handler_cancellation=True, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port: int = runner.addresses[0][1]
        return runner, port

    def start(self, app: web.Application) -> tuple[web.AppRunner, int]:
        result: tuple[web.AppRunner, int] = self.run(self._start(app))
        return result

    def stop(self, runner: web.AppRunner) -> None:
        self.run(runner.cleanup())

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.close()


# ---------------------------------------------------------------- the fake upstream


@dataclass
class FakeUpstream:
    """A real OpenAI-compatible server on 127.0.0.1, scripted per `key/model`, `model` or default.

    Actions: "ok", "429:<retry-after>", "500", "400", "hang", "drop" (stream a little, then cut the
    connection), "slow" (stream chunks with pauses, then [DONE]).
    """

    port: int = 0
    script: dict[str, list[str]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    stream_chunks: list[bytes] = field(
        default_factory=lambda: [
            b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
            b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}\n\n',
            b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{"content":"lo \\u00e9"},"finish_reason":null}]}\n\n',
            b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"up","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n',
            b"data: [DONE]\n\n",
        ]
    )

    def next_action(self, key: str, model: str) -> str:
        for k in (f"{key}/{model}", model):
            queue = self.script.get(k)
            if queue:
                return queue.pop(0)
        return "ok"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        model = body["model"]
        action = self.next_action(key, model)
        self.calls.append({"key": key, "model": model, "body": body, "action": action})
        if action.startswith("429"):
            retry = action.partition(":")[2]
            headers = {"Retry-After": retry} if retry else {}
            return web.json_response(
                {
                    "error": {
                        "message": "slow down",
                        "type": "requests",
                        "param": None,
                        "code": None,
                    }
                },
                status=429,
                headers=headers,
            )
        if action in ("500", "503", "400", "401", "422"):
            error = {"message": f"fake {action}", "type": "fake", "param": None, "code": None}
            return web.json_response({"error": error}, status=int(action))
        if action == "hang":
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                self.cancelled.append(model)
                raise
            return web.json_response({})
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            try:
                for i, chunk in enumerate(self.stream_chunks):
                    if action == "drop" and i == 2:
                        assert request.transport is not None
                        request.transport.close()
                        return resp
                    await resp.write(chunk)
                    if action == "slow":
                        await asyncio.sleep(0.05)
                    if action == "stall" and i == 1:
                        await asyncio.sleep(30)
            except (asyncio.CancelledError, ConnectionResetError):
                self.cancelled.append(model)
                raise
            await resp.write_eof()
            return resp
        text = "".join(
            m["content"]
            for m in body["messages"]
            if m.get("role") == "user" and isinstance(m.get("content"), str)
        )
        return web.json_response(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 1,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": f"fake:{model}:{text}",
                            "refusal": None,
                        },
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30},
            }
        )

    async def embed(self, request: web.Request) -> web.StreamResponse:
        """`/v1/embeddings`: one 3-dimensional vector per input, or the scripted failure."""
        body = await request.json()
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        model = body["model"]
        action = self.next_action(key, model)
        self.calls.append({"key": key, "model": model, "body": body, "action": action})
        if action != "ok":
            status = int(action.partition(":")[0])
            error = {"message": f"fake {status}", "type": "fake", "param": None, "code": None}
            return web.json_response({"error": error}, status=status)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.5, 0.5, float(i)]}
            for i in range(len(inputs))
        ]
        usage = {"prompt_tokens": 7, "total_tokens": 7}
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})

    async def respond(self, request: web.Request) -> web.StreamResponse:
        """`/v1/responses` as OpenAI serves it: a `response` naming the upstream model, or its
        stream of events."""
        body = await request.json()
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        model = body["model"]
        self.calls.append({"key": key, "model": model, "body": body, "action": "responses"})
        item = {
            "id": "msg_up",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "native", "annotations": [], "logprobs": []}
            ],
        }
        response: dict[str, Any] = {
            "id": "resp_up",
            "object": "response",
            "created_at": 1,
            "status": "completed",
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": model + "-2026-01-01",
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "temperature": None,
            "top_p": None,
            "metadata": {},
        }
        if not body.get("stream"):
            return web.json_response(response)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        events: list[dict[str, Any]] = [
            {
                "type": "response.created",
                "response": {**response, "output": [], "status": "in_progress"},
            },
            {"type": "response.completed", "response": response},
        ]
        for n, event in enumerate(events):
            event["sequence_number"] = n
            line = f"event: {event['type']}\ndata: ".encode() + orjson.dumps(event)
            await resp.write(line + b"\n\n")
        await resp.write_eof()
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        app.router.add_post("/v1/embeddings", self.embed)
        app.router.add_post("/v1/responses", self.respond)
        return app


@pytest.fixture
def fake(loop_thread: LoopThread) -> Iterator[FakeUpstream]:
    up = FakeUpstream()
    runner, up.port = loop_thread.start(up.app())
    yield up
    loop_thread.stop(runner)


class FakeClock:
    """A settable clock (epoch seconds)."""

    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@dataclass
class Gateway:
    """A running routectl app on a real port."""

    port: int
    app: web.Application
    clock: FakeClock
    table: RoutingTable

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]


@pytest.fixture
def gateway(loop_thread: LoopThread, fake: FakeUpstream) -> Iterator[Callable[..., Gateway]]:
    """Start create_app for a table built from the base config plus extra parts.

    Every answer the gateway gives is checked against OpenAI's schemas when the test ends
    (conformance.py): a test that provokes a malformed answer fails."""
    runners: list[web.AppRunner] = []
    gateways: list[list[Answer]] = []

    def start(seed: int = 7, max_body_bytes: int = 10 * 1024 * 1024, **parts: str) -> Gateway:
        table = make_table(fake.port, **parts)
        clock = FakeClock()
        app = create_app(
            table,
            rng=random.Random(seed),
            clock=clock,
            environ=ENV,
            max_body_bytes=max_body_bytes,
        )
        recorded = record_answers(app)
        runner, port = loop_thread.start(app)
        runners.append(runner)
        gateways.append(recorded)
        return Gateway(port, app, clock, table)

    yield start
    for runner in runners:
        loop_thread.stop(runner)
    problems = check_answers([a for recorded in gateways for a in recorded])
    assert not problems, "answers that break OpenAI's schemas:\n" + "\n".join(problems)


def sse_bytes(chunks: list[bytes]) -> bytes:
    return b"".join(chunks)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)


@pytest.fixture
def start(gateway: Callable[..., Gateway]) -> Callable[..., Gateway]:
    """Alias of `gateway`, reads better in tests: gw = start(collections=...)."""
    return gateway
