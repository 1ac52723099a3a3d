"""Real servers and clients for the /v1/messages tests: a fake Anthropic Messages API and a fake
OpenAI-compatible upstream on 127.0.0.1 (both scripted, both recording what routectl sent), and
the official `anthropic` SDK wired through a recording transport that keeps every request body it
sent and runs the SSE validator over every stream it read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import orjson
from aiohttp import web
from messages_sse import validate

ANTHROPIC_KEY = "sk-ant-connection-secret"  # the connection's key: what the fake upstream wants
CLAUDE_NAME = "claude-sonnet-upstream"  # the upstream's name for claude/sonnet


def sse(name: str, data: dict[str, Any]) -> bytes:
    """One SSE event as Anthropic writes it."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def message_events(
    model: str = CLAUDE_NAME, *, thinking: bool = True, tool: bool = True
) -> list[bytes]:
    """A recorded-style Messages stream: thinking with a signature, text, a tool call."""
    start: dict[str, Any] = {
        "id": "msg_01stream",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "cache_read_input_tokens": 100, "output_tokens": 1},
    }
    events = [sse("message_start", {"type": "message_start", "message": start})]
    events.append(sse("ping", {"type": "ping"}))
    i = 0
    if thinking:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        events += [
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": block},
            ),
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "thinking_delta", "thinking": "Let me think."},
                },
            ),
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "signature_delta", "signature": "c2lnbmF0dXJl"},
                },
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": i}),
        ]
        i += 1
    text = {"type": "text", "text": ""}
    events += [
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": i, "content_block": text},
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": i,
                "delta": {"type": "text_delta", "text": "Hel"},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": i,
                "delta": {"type": "text_delta", "text": "lo"},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": i}),
    ]
    i += 1
    if tool:
        use = {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {}}
        events += [
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": use},
            ),
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
                },
            ),
            sse(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": i,
                    "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
                },
            ),
            sse("content_block_stop", {"type": "content_block_stop", "index": i}),
        ]
    delta = {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None}
    events.append(
        sse(
            "message_delta",
            {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 9}},
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


def message_answer(model: str = CLAUDE_NAME) -> dict[str, Any]:
    """A recorded-style non-streamed Messages answer with a signed thinking block."""
    return {
        "id": "msg_01answer",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [
            {"type": "thinking", "thinking": "Brief.", "signature": "EqQBCgIYAh"},
            {"type": "text", "text": "Bonjour"},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 11, "cache_creation_input_tokens": 5, "output_tokens": 7},
    }


@dataclass
class FakeAnthropic:
    """A real Messages API on 127.0.0.1 that records each request's raw bytes and headers.

    `script` actions: "ok", "429:<retry-after>", "529", "500", "400", "drop" (a stream cut after
    a few events). A stream pauses after its first text delta until `release` is set (5 s at
    most; `held_too_long` records a wait that ran out)."""

    port: int = 0
    script: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    counts: list[dict[str, Any]] = field(default_factory=list)
    count_script: list[str] = field(default_factory=list)
    answer: dict[str, Any] = field(default_factory=message_answer)
    events: list[bytes] = field(default_factory=message_events)
    release: asyncio.Event | None = None
    held_too_long: bool = False

    def _record(self, request: web.Request, raw: bytes, into: list[dict[str, Any]]) -> None:
        into.append({"raw": raw, "body": orjson.loads(raw), "headers": dict(request.headers)})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self._record(request, raw, self.calls)
        if request.headers.get("x-api-key") != ANTHROPIC_KEY or "Authorization" in request.headers:
            return self._error(401, "authentication_error")
        action = self.script.pop(0) if self.script else "ok"
        if action.startswith("429"):
            return self._error(429, "rate_limit_error", {"Retry-After": action.partition(":")[2]})
        if action in ("529", "500", "400"):
            kind = {"529": "overloaded_error", "500": "api_error", "400": "invalid_request_error"}
            return self._error(int(action), kind[action])
        body = orjson.loads(raw)
        if not body.get("stream"):
            return web.json_response(self.answer)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for event in self.events:
            await resp.write(event)
            if action == "drop" and b"text_delta" in event:
                assert request.transport is not None
                request.transport.close()
                return resp
            if b'"text":"Hel"' in event and self.release is not None:
                try:
                    await asyncio.wait_for(self.release.wait(), 5)
                except TimeoutError:
                    self.held_too_long = True
        await resp.write_eof()
        return resp

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self._record(request, raw, self.counts)
        action = self.count_script.pop(0) if self.count_script else "ok"
        if action != "ok":
            return self._error(int(action), "overloaded_error")
        return web.json_response({"input_tokens": 4242})

    @staticmethod
    def _error(status: int, kind: str, headers: dict[str, str] | None = None) -> web.Response:
        body = {"type": "error", "error": {"type": kind, "message": f"fake {status}"}}
        return web.json_response(body, status=status, headers=headers)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        return app


def chat_answer(content: str | None = "fake answer", **message: Any) -> dict[str, Any]:
    """A recorded-style chat.completion."""
    msg = {"role": "assistant", "content": content, **message}
    finish = "tool_calls" if message.get("tool_calls") else "stop"
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-upstream",
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
    }


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    """One chat.completion.chunk SSE event."""
    data = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-upstream",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


def usage_chunk(prompt: int = 30, completion: int = 12) -> bytes:
    """The include_usage tail chunk."""
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    data = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-upstream",
        "choices": [],
        "usage": usage,
    }
    return b"data: " + orjson.dumps(data) + b"\n\n"


def text_chunks(*pieces: str) -> list[bytes]:
    """A streamed text answer with usage and [DONE]."""
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": p}) for p in pieces]
    return [*out, chunk({}, "stop"), usage_chunk(), b"data: [DONE]\n\n"]


@dataclass
class FakeChat:
    """A real OpenAI-compatible upstream on 127.0.0.1 whose answers the test sets: `answers` (a
    chat.completion each) and `streams` (chunk lists), popped per request; `script` actions
    "ok", "429", "500", "400"."""

    port: int = 0
    answers: list[dict[str, Any]] = field(default_factory=list)
    streams: list[list[bytes]] = field(default_factory=list)
    script: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append({"body": body, "headers": dict(request.headers)})
        action = self.script.pop(0) if self.script else "ok"
        if action != "ok":
            error = {"message": f"fake {action}", "type": "fake_error", "code": "fake_code"}
            return web.json_response({"error": error}, status=int(action))
        if not body.get("stream"):
            return web.json_response(self.answers.pop(0) if self.answers else chat_answer())
        chunks = self.streams.pop(0) if self.streams else text_chunks("fake", " stream")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for c in chunks:
            await resp.write(c)
        await resp.write_eof()
        return resp

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.handle)
        return app


# ---------------------------------------------------------------- the SDK, recorded


@dataclass
class Recorded:
    """What the SDK clients of one test sent and read."""

    requests: list[tuple[str, bytes]] = field(default_factory=list)  # (path, body)
    headers: list[dict[str, str]] = field(default_factory=list)  # of each request
    streams: list[bytes] = field(default_factory=list)  # every SSE body read, validated

    def last_body(self, path: str = "/v1/messages") -> bytes:
        """The last request body the SDK sent to `path`."""
        return next(body for p, body in reversed(self.requests) if p == path)


class _Tee:
    """The bytes of one SSE body as the client reads them; validated at the end of the body, or
    when the client closes it early (then what it read must be a valid beginning)."""

    def __init__(self, rec: Recorded) -> None:
        self.rec, self.buf, self.done = rec, bytearray(), False

    def end(self, complete: bool) -> None:
        if not self.done:
            self.done = True
            self.rec.streams.append(bytes(self.buf))
            validate(bytes(self.buf), complete=complete)


class _TeeSync(httpx2.SyncByteStream):
    def __init__(self, inner: httpx2.SyncByteStream, rec: Recorded) -> None:
        self.inner, self.tee = inner, _Tee(rec)

    def __iter__(self) -> Iterator[bytes]:
        for part in self.inner:
            self.tee.buf += part
            yield part
        self.tee.end(complete=True)

    def close(self) -> None:
        self.inner.close()
        self.tee.end(complete=False)


class _TeeAsync(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, rec: Recorded) -> None:
        self.inner, self.tee = inner, _Tee(rec)

    async def __aiter__(self) -> Any:
        async for part in self.inner:
            self.tee.buf += part
            yield part
        self.tee.end(complete=True)

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.tee.end(complete=False)


def _is_sse(response: httpx2.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/event-stream")


class RecordingTransport(httpx2.HTTPTransport):
    """Keeps each request body; validates each SSE body once the client has read it all."""

    def __init__(self, rec: Recorded) -> None:
        super().__init__()
        self.rec = rec

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.rec.requests.append((request.url.path, request.read()))
        self.rec.headers.append(dict(request.headers))
        response = super().handle_request(request)
        if _is_sse(response):
            assert isinstance(response.stream, httpx2.SyncByteStream)
            response.stream = _TeeSync(response.stream, self.rec)
        return response


class AsyncRecordingTransport(httpx2.AsyncHTTPTransport):
    """The async twin of RecordingTransport."""

    def __init__(self, rec: Recorded) -> None:
        super().__init__()
        self.rec = rec

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.rec.requests.append((request.url.path, await request.aread()))
        self.rec.headers.append(dict(request.headers))
        response = await super().handle_async_request(request)
        if _is_sse(response):
            assert isinstance(response.stream, httpx2.AsyncByteStream)
            response.stream = _TeeAsync(response.stream, self.rec)
        return response


def sdk(base_url: str, key: str, rec: Recorded, **options: Any) -> anthropic.Anthropic:
    """The official client, recorded; no retries (each test decides what is retried)."""
    http = anthropic.DefaultHttpxClient(transport=RecordingTransport(rec))
    return anthropic.Anthropic(
        base_url=base_url, api_key=key, max_retries=0, timeout=10, http_client=http, **options
    )


def async_sdk(base_url: str, key: str, rec: Recorded) -> anthropic.AsyncAnthropic:
    """The official async client, recorded."""
    http = anthropic.DefaultAsyncHttpxClient(transport=AsyncRecordingTransport(rec))
    return anthropic.AsyncAnthropic(
        base_url=base_url, api_key=key, max_retries=0, timeout=10, http_client=http
    )
