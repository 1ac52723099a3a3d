"""The anthropic dialect: pure translation both ways, and end to end against a fake Messages API."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import openai
import orjson
import pytest
from aiohttp import web
from conformance import check_answers, record_answers
from conftest import KEYS, FakeClock, FakeUpstream, LoopThread, digest

from routectl.compiler import build_table
from routectl.runtime.app import create_app
from routectl.runtime.dialects import connection_problems
from routectl.runtime.dialects.anthropic import (
    DEFAULT_MAX_TOKENS,
    endpoint,
    finish_reason,
    from_anthropic,
    to_anthropic,
    usage_of,
)
from routectl.runtime.dialects.anthropic_stream import StreamTranslator
from routectl.runtime.keys import RUNTIME

ANTHROPIC_KEY = "sk-ant-test-secret"
ENV = {"ANTHROPIC_TEST_KEY": ANTHROPIC_KEY, "PLATFORM_KEY": "sk-platform"}
UPSTREAM_NAME = "claude-test-upstream"


# ================================================================ request: OpenAI -> Anthropic


def test_system_messages_roles_and_string_content() -> None:
    body = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Speak French."}]},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "bonjour"},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ],
        "max_tokens": 50,
    }
    out = to_anthropic(body, "claude-up", None)
    assert out == {
        "model": "claude-up",
        "system": "Be brief.\n\nSpeak French.",
        "messages": [
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": [{"type": "text", "text": "bonjour"}]},
            {"role": "user", "content": [{"type": "text", "text": "again"}]},
        ],
        "max_tokens": 50,
    }
    assert body["model"] == "x", "the client's body is not mutated"


@pytest.mark.parametrize(
    ("extra", "default", "expected"),
    [
        ({"max_completion_tokens": 77, "max_tokens": 5}, 8192, 77),
        ({"max_tokens": 5}, 8192, 5),
        ({}, 8192, 8192),
        ({}, None, DEFAULT_MAX_TOKENS),
        ({"max_tokens": 0}, None, 4096),
        ({"max_completion_tokens": None, "max_tokens": 50}, 8192, 50),  # an explicit null
    ],
)
def test_max_tokens_is_always_set(
    extra: dict[str, Any], default: int | None, expected: int
) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], **extra}
    assert to_anthropic(body, "m", default)["max_tokens"] == expected


def test_sampling_stop_stream_and_user() -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop": "END",
        "stream": True,
        "user": "u-42",
        "n": 1,
        "presence_penalty": 0.5,
        "response_format": {"type": "text"},
    }
    out = to_anthropic(body, "m", None)
    assert out["temperature"] == 0.2 and out["top_p"] == 0.9
    assert out["stop_sequences"] == ["END"]
    assert out["stream"] is True
    assert out["metadata"] == {"user_id": "u-42"}
    assert not {"n", "presence_penalty", "response_format", "stop", "user"} & set(out)
    body["stop"] = ["a", "b"]
    del body["stream"]
    out = to_anthropic(body, "m", None)
    assert out["stop_sequences"] == ["a", "b"] and "stream" not in out


def test_images_data_and_http_urls() -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,AAAA"}},
                    {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
                    {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}},
                ],
            }
        ]
    }
    content = to_anthropic(body, "m", None)["messages"][0]["content"]
    assert content == [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": "AAAA"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.png"}},
    ]


def test_tools_tool_calls_and_tool_results() -> None:
    params = {"type": "object", "properties": {"city": {"type": "string"}}}
    body = {
        "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Rome"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "rain"}],
            },
            {"role": "user", "content": "thanks, and tomorrow?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": "weather", "description": "Weather", "parameters": params},
            },
            {"type": "function", "function": {"name": "noop"}},
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
    }
    out = to_anthropic(body, "m", None)
    assert out["tools"] == [
        {"name": "weather", "description": "Weather", "input_schema": params},
        {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert out["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "weather", "input": {"city": "Rome"}},
            ],
        },
        {
            # both results and the next user message share one user turn, results first
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "rain"}],
                },
                {"type": "text", "text": "thanks, and tomorrow?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ({"type": "function", "function": {"name": "f"}}, {"type": "tool", "name": "f"}),
        (None, None),
    ],
)
def test_tool_choice(choice: Any, expected: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    if choice is not None:
        body["tool_choice"] = choice
    assert to_anthropic(body, "m", None).get("tool_choice") == expected


def test_endpoint_url_and_headers() -> None:
    url, headers = endpoint("http://127.0.0.1:1/v1/", "sk-x")
    assert url == "http://127.0.0.1:1/v1/messages"
    assert headers == {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": "sk-x",
    }
    assert endpoint(None, None) == (
        "https://api.anthropic.com/v1/messages",
        {"content-type": "application/json", "anthropic-version": "2023-06-01"},
    )


# ================================================================ response: Anthropic -> OpenAI


def test_response_text_and_usage() -> None:
    data = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 3, "cache_read_input_tokens": 5},
    }
    out = from_anthropic(data, "claude/sonnet", 123)
    assert out == {
        "id": "msg_1",
        "object": "chat.completion",
        "created": 123,
        "model": "claude/sonnet",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 15, "completion_tokens": 3, "total_tokens": 18},
    }


def test_response_tool_use() -> None:
    data = {
        "id": "msg_2",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    choice = from_anthropic(data, "m", 0)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"] == [
        {
            "id": "toolu_1",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
        }
    ]


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
        (None, "stop"),
    ],
)
def test_finish_reasons(stop: str | None, finish: str) -> None:
    assert finish_reason(stop) == finish
    assert from_anthropic({"stop_reason": stop}, "m", 0)["choices"][0]["finish_reason"] == finish


def test_usage_of_missing_fields() -> None:
    assert usage_of(None) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert usage_of({"input_tokens": 4, "output_tokens": 6, "cache_creation_input_tokens": 2}) == {
        "prompt_tokens": 6,
        "completion_tokens": 6,
        "total_tokens": 12,
    }


# ================================================================ streaming translation


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_events(stop_reason: str = "tool_use") -> list[bytes]:
    """A Messages stream: text "Hello", then a weather tool call, then the stop."""
    return [
        sse(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_s1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": UPSTREAM_NAME,
                    "stop_reason": None,
                    "usage": {"input_tokens": 12, "output_tokens": 1},
                },
            },
        ),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        sse("ping", {"type": "ping"}),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Hel"},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "lo"},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_9",
                    "name": "weather",
                    "input": {},
                },
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"city":'},
            },
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": ' "Paris"}'},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": 9},
            },
        ),
        sse("message_stop", {"type": "message_stop"}),
    ]


def parse_chunks(raw: bytes) -> list[Any]:
    """OpenAI SSE bytes -> list of decoded chunks ("[DONE]" kept as a string)."""
    out: list[Any] = []
    for event in raw.split(b"\n\n"):
        if not event:
            continue
        assert event.startswith(b"data: "), event
        payload = event[6:]
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


def translated_arguments(events: list[bytes]) -> str:
    """The tool-call arguments text an OpenAI client assembles from a translated stream."""
    translator = StreamTranslator("claude/sonnet", 1, include_usage=False)
    chunks = parse_chunks(b"".join(translator.feed(e) for e in events))
    return "".join(
        call["function"].get("arguments", "")
        for c in chunks
        if c != "[DONE]"
        for call in c["choices"][0]["delta"].get("tool_calls", [])
    )


def test_stream_translation_event_by_event() -> None:
    tr = StreamTranslator("claude/sonnet", 77, include_usage=True)
    events = stream_events()
    outputs = [tr.feed(e) for e in events]
    # every event that carries something is answered at once, not held back
    assert [bool(o) for o in outputs] == [1, 0, 0, 1, 1, 0, 1, 1, 1, 0, 0, 1]
    chunks = parse_chunks(b"".join(outputs))
    assert chunks[-1] == "[DONE]"
    body = chunks[:-1]
    assert all(c["id"] == "msg_s1" and c["model"] == "claude/sonnet" for c in body)
    assert all(c["object"] == "chat.completion.chunk" and c["created"] == 77 for c in body)
    deltas = [c["choices"][0]["delta"] for c in body if c["choices"]]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "toolu_9",
                    "type": "function",
                    "function": {"name": "weather", "arguments": ""},
                }
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in body if c["choices"]][-1] == "tool_calls"
    assert body[-1] == {
        "id": "msg_s1",
        "object": "chat.completion.chunk",
        "created": 77,
        "model": "claude/sonnet",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 9, "total_tokens": 21},
    }
    assert tr.usage == body[-1]["usage"] and tr.done and tr.error is None
    assert tr.close() == b""


def test_a_streamed_tool_call_without_input_gets_empty_json_arguments() -> None:
    tool = {"type": "tool_use", "id": "toolu_0", "name": "now", "input": {}}
    events = [
        sse("message_start", {"type": "message_start", "message": {"id": "m", "usage": {}}}),
        sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": tool},
        ),
        sse(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": ""},
            },
        ),
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}}),
        sse("message_stop", {"type": "message_stop"}),
    ]
    assert json.loads(translated_arguments(events)) == {}  # as the non-streamed answer's "{}"
    # a tool call that did stream its input is not given a second "{}"
    assert json.loads(translated_arguments(stream_events())) == {"city": "Paris"}


def test_stream_split_anywhere_and_crlf_give_the_same_output() -> None:
    raw = b"".join(stream_events("end_turn"))
    whole = StreamTranslator("m", 1).feed(raw)
    tr = StreamTranslator("m", 1)
    crlf = raw.replace(b"\n", b"\r\n")
    pieces = b"".join(tr.feed(crlf[i : i + 1]) for i in range(len(crlf)))
    assert pieces == whole
    chunks = parse_chunks(whole)
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c == "[DONE]" or c["choices"] for c in chunks), "no usage chunk unless asked"


def test_stream_error_event_and_early_end() -> None:
    tr = StreamTranslator("m", 1)
    tr.feed(stream_events()[0])
    err = tr.feed(
        sse(
            "error",
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )
    )
    assert parse_chunks(err) == [
        {"error": {"code": "upstream_error", "type": "overloaded_error", "message": "Overloaded"}}
    ]
    assert tr.error == "overloaded_error" and tr.close() == b""
    assert tr.feed(stream_events()[3]) == b"", "nothing after an error"

    cut = StreamTranslator("m", 1)
    cut.feed(b"".join(stream_events()[:4]))
    tail = parse_chunks(cut.close())
    assert tail[0]["error"]["code"] == "upstream_error"
    assert cut.error == "incomplete_stream" and cut.usage is None


def test_credentials_rule_applies_to_anthropic_connections() -> None:
    table = build_table(text=config(1, 2))
    assert connection_problems(table, ENV) == {}
    assert connection_problems(table, {"PLATFORM_KEY": "x"}) == {
        "platform-claude": "credentials not set (ANTHROPIC_TEST_KEY)"
    }


def test_an_anthropic_provider_without_base_url_uses_the_official_api() -> None:
    text = """
version: 1
providers:
  anthropic: {api: anthropic}
models:
  anthropic/claude-x: {}
connections:
  - {id: p, owner: platform, provider: anthropic, models: [anthropic/claude-x],
     credentials: {api_key_env: ANTHROPIC_TEST_KEY}}
"""
    table = build_table(text=text)
    assert table.connections["p"].base_url is None
    url, headers = endpoint(table.connections["p"].base_url, "k")
    assert url == "https://api.anthropic.com/v1/messages" and headers["x-api-key"] == "k"


# ================================================================ end to end


def config(anthropic_port: int, openai_port: int) -> str:
    return f"""
version: 1
defaults: {{cooldown_s: 30, allowed_fails: 3, max_attempts: 3}}
users:
  alice: {{display_name: Alice, api_keys: ["{digest(KEYS["alice"])}"]}}
providers:
  claude: {{api: anthropic, base_url: "http://127.0.0.1:{anthropic_port}/v1"}}
  fake: {{api: openai, base_url: "http://127.0.0.1:{openai_port}/v1"}}
models:
  claude/sonnet:
    context_window: 200000
    max_output_tokens: 8192
    pricing: {{input_per_mtok: 3, output_per_mtok: 15}}
    capabilities: [tools, vision]
  fake/m1: {{context_window: 100000}}
connections:
  - id: platform-claude
    owner: platform
    provider: claude
    models: [claude/sonnet]
    credentials: {{api_key_env: ANTHROPIC_TEST_KEY}}
    upstream_names: {{claude/sonnet: {UPSTREAM_NAME}}}
  - {{id: platform-fake, owner: platform, provider: fake, models: [fake/m1], credentials: {{api_key_env: PLATFORM_KEY}}}}
collections:
  claude-first:
    scope: system
    strategy: priority
    members: [{{model: claude/sonnet, priority: 10}}, {{model: fake/m1}}]
"""


@dataclass
class FakeAnthropic:
    """A real Messages API server on 127.0.0.1 that checks what routectl sends it.

    Actions: "ok", "429:<retry-after>", "400". A stream pauses after its first text delta until
    `release` is set (or 5 s pass, which `timed_out` records).
    """

    port: int = 0
    script: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    timed_out: bool = False

    def check(self, request: web.Request, body: Any) -> None:
        h = request.headers
        if h.get("x-api-key") != ANTHROPIC_KEY:
            self.problems.append("x-api-key")
        if h.get("anthropic-version") != "2023-06-01":
            self.problems.append("anthropic-version")
        if not h.get("content-type", "").startswith("application/json"):
            self.problems.append("content-type")
        if "Authorization" in h:
            self.problems.append("bearer header sent")
        if not isinstance(body, dict):
            self.problems.append("body")
            return
        if not isinstance(body.get("max_tokens"), int):
            self.problems.append("max_tokens")
        if body.get("model") != UPSTREAM_NAME:
            self.problems.append(f"model {body.get('model')}")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            self.problems.append("messages")
        elif any(m.get("role") not in ("user", "assistant") for m in body["messages"]):
            self.problems.append("roles")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.check(request, body)
        action = self.script.pop(0) if self.script else "ok"
        self.calls.append({"body": body, "action": action})
        if self.problems:
            return web.json_response({"type": "error", "error": {"type": "bad"}}, status=418)
        if action.startswith("429"):
            return web.json_response(
                {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}},
                status=429,
                headers={"Retry-After": action.partition(":")[2]},
            )
        if action == "400":
            return web.json_response(
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "bad image"},
                },
                status=400,
            )
        if body.get("stream"):
            resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await resp.prepare(request)
            for i, event in enumerate(stream_events()):
                if i == 7:  # one event split over two writes
                    await resp.write(event[:20])
                    await asyncio.sleep(0.01)
                    await resp.write(event[20:])
                else:
                    await resp.write(event)
                if i == 3:
                    try:
                        await asyncio.wait_for(self.release.wait(), 5)
                    except TimeoutError:
                        self.timed_out = True
            await resp.write_eof()
            return resp
        return web.json_response(
            {
                "id": "msg_ns1",
                "type": "message",
                "role": "assistant",
                "model": UPSTREAM_NAME,
                "content": [
                    {"type": "text", "text": "Bonjour"},
                    {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"a": 1}},
                ],
                "stop_reason": "tool_use",
                "stop_sequence": None,
                "usage": {"input_tokens": 11, "output_tokens": 7},
            }
        )

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/messages", self.handle)
        return app


@dataclass
class Setup:
    anth: FakeAnthropic
    fake: FakeUpstream
    app: web.Application
    clock: FakeClock
    client: openai.OpenAI
    loop_thread: LoopThread


@pytest.fixture
def setup(loop_thread: LoopThread, fake: FakeUpstream) -> Iterator[Setup]:
    async def make() -> FakeAnthropic:
        return FakeAnthropic()  # built on the server loop: its Event belongs there

    anth: FakeAnthropic = loop_thread.run(make())
    anth_runner, anth.port = loop_thread.start(anth.app())
    clock = FakeClock()
    table = build_table(text=config(anth.port, fake.port))
    app = create_app(table, rng=random.Random(1), clock=clock, environ=ENV)
    recorded = record_answers(app)  # every answer checked against OpenAI's schemas at the end
    runner, port = loop_thread.start(app)
    client = openai.OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=KEYS["alice"], max_retries=0, timeout=10
    )
    yield Setup(anth, fake, app, clock, client, loop_thread)
    loop_thread.stop(runner)
    loop_thread.stop(anth_runner)
    problems = check_answers(recorded)
    assert not problems, "answers that break OpenAI's schemas:\n" + "\n".join(problems)


@pytest.mark.e2e
def test_e2e_non_streaming(setup: Setup) -> None:
    raw = setup.client.chat.completions.with_raw_response.create(
        model="claude/sonnet",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ],
        tools=[{"type": "function", "function": {"name": "weather", "parameters": {}}}],
        temperature=0.5,
    )
    assert setup.anth.problems == []
    sent = setup.anth.calls[-1]["body"]
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [{"role": "user", "content": "hello"}]
    assert sent["max_tokens"] == 8192, "the model's max_output_tokens from the table"
    assert sent["tools"] == [{"name": "weather", "input_schema": {}}]
    assert sent["temperature"] == 0.5
    assert raw.headers["x-routectl-selected-model"] == "claude/sonnet"
    assert raw.headers["x-routectl-connection"] == "platform-claude"
    assert raw.headers["x-routectl-table"] and raw.headers["x-request-id"]
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.model == "claude/sonnet"
    msg = completion.choices[0].message
    assert msg.content == "Bonjour"
    assert msg.tool_calls is not None
    call = msg.tool_calls[0]
    assert call.id == "toolu_1" and call.type == "function"
    assert call.function.name == "weather" and json.loads(call.function.arguments) == {"a": 1}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (11, 7)
    assert completion.usage.total_tokens == 18
    extra = json.loads(raw.http_response.content)
    assert extra["_selected_model"] == "claude/sonnet"
    assert extra["_routing_table"] == raw.headers["x-routectl-table"]


@pytest.mark.e2e
def test_e2e_streaming_forwards_each_event_as_it_arrives(setup: Setup) -> None:
    raw = setup.client.chat.completions.with_raw_response.create(
        model="claude/sonnet",
        messages=[{"role": "user", "content": "hello"}],
        stream=True,
        stream_options={"include_usage": True},
        max_tokens=64,
    )
    assert raw.headers["x-routectl-selected-model"] == "claude/sonnet"
    assert raw.headers["x-routectl-connection"] == "platform-claude"
    assert raw.headers["content-type"].startswith("text/event-stream")
    text = ""
    args = ""
    finish = None
    usage = None
    names: list[str] = []
    for chunk in raw.parse():
        assert chunk.model == "claude/sonnet"
        if chunk.usage is not None:
            usage = chunk.usage
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if delta.content:
            text += delta.content
            if text == "Hel":
                # the upstream holds the rest back until we have seen the first text delta
                setup.loop_thread.loop.call_soon_threadsafe(setup.anth.release.set)
        for tc in delta.tool_calls or ():
            if tc.function and tc.function.name:
                names.append(tc.function.name)
            if tc.function and tc.function.arguments:
                args += tc.function.arguments
        finish = chunk.choices[0].finish_reason or finish
    assert setup.anth.problems == []
    assert setup.anth.timed_out is False, "the first delta was held back: the stream buffers"
    assert setup.anth.calls[-1]["body"]["stream"] is True
    assert setup.anth.calls[-1]["body"]["max_tokens"] == 64
    assert text == "Hello"
    assert names == ["weather"] and json.loads(args) == {"city": "Paris"}
    assert finish == "tool_calls"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (12, 9)


@pytest.mark.e2e
def test_e2e_raw_stream_ends_with_done(setup: Setup) -> None:
    setup.anth.release.set()
    with setup.client.chat.completions.with_streaming_response.create(
        model="claude/sonnet", messages=[{"role": "user", "content": "hi"}], stream=True
    ) as resp:
        raw = b"".join(resp.iter_bytes())
    chunks = parse_chunks(raw)
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}


@pytest.mark.e2e
def test_e2e_429_cools_down_and_falls_back(setup: Setup) -> None:
    setup.anth.script = ["429:7"]
    raw = setup.client.chat.completions.with_raw_response.create(
        model="collection/claude-first", messages=[{"role": "user", "content": "hello"}]
    )
    body = json.loads(raw.http_response.content)
    assert raw.headers["x-routectl-connection"] == "platform-fake"
    assert body["model"] == "fake/m1"
    assert body["_fallback_used"] is True
    assert body["_fallback_reason"] == "rate_limited"
    assert body["_original_selection"] == "claude/sonnet"
    assert len(setup.anth.calls) == 1 and setup.fake.calls[-1]["key"] == "sk-platform"
    state = setup.app[RUNTIME].state
    cooldown = state.cooldowns[("platform-claude", "claude/sonnet")]
    assert cooldown.reason == "rate_limited" and cooldown.until == setup.clock.t + 7
    # while it cools down the anthropic deployment is not even tried
    again = setup.client.chat.completions.with_raw_response.create(
        model="collection/claude-first", messages=[{"role": "user", "content": "hello"}]
    )
    assert again.headers["x-routectl-connection"] == "platform-fake"
    assert len(setup.anth.calls) == 1
    setup.clock.t += 8
    back = setup.client.chat.completions.with_raw_response.create(
        model="collection/claude-first", messages=[{"role": "user", "content": "hello"}]
    )
    assert back.headers["x-routectl-connection"] == "platform-claude"


@pytest.mark.e2e
def test_e2e_client_error_is_returned_with_its_status(setup: Setup) -> None:
    setup.anth.script = ["400"]
    with pytest.raises(openai.BadRequestError) as info:
        setup.client.chat.completions.create(
            model="collection/claude-first", messages=[{"role": "user", "content": "hello"}]
        )
    assert info.value.response.headers["x-routectl-connection"] == "platform-claude"
    assert info.value.response.json()["error"]["type"] == "invalid_request_error"
    assert setup.fake.calls == [], "a 400 is final: no fallback"
