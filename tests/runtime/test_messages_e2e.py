"""POST /v1/messages end to end: routectl on a real port, the official `anthropic` SDK as the client
(every SSE body it reads goes through the event-sequence validator), a fake Anthropic Messages API
and a fake OpenAI-compatible upstream on 127.0.0.1."""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import orjson
import pytest
from conftest import KEYS, FakeClock, LoopThread, digest
from messages_fakes import (
    ANTHROPIC_KEY,
    CLAUDE_NAME,
    FakeAnthropic,
    FakeChat,
    Recorded,
    async_sdk,
    chat_answer,
    chunk,
    message_events,
    sdk,
    usage_chunk,
)
from messages_sse import validate

from routectl.compiler import build_table
from routectl.runtime.app import create_app
from routectl.runtime.keys import RUNTIME

pytestmark = pytest.mark.e2e

ENV = {"ANTHROPIC_TEST_KEY": ANTHROPIC_KEY, "OPENAI_TEST_KEY": "sk-openai-connection"}
WEATHER: dict[str, Any] = {
    "name": "weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def config(anthropic_port: int, openai_port: int) -> str:
    return f"""
version: 1
defaults: {{cooldown_s: 30, allowed_fails: 3, max_attempts: 3}}
organizations:
  acme: {{display_name: Acme, members: [alice]}}
users:
  alice: {{display_name: Alice, api_keys: ["{digest(KEYS["alice"])}"]}}
  carol: {{display_name: Carol, api_keys: ["{digest(KEYS["carol"])}"]}}
providers:
  claude: {{api: anthropic, base_url: "http://127.0.0.1:{anthropic_port}/v1"}}
  fake: {{api: openai, base_url: "http://127.0.0.1:{openai_port}/v1"}}
  echo: {{api: echo}}
models:
  claude/sonnet:
    context_window: 200000
    max_output_tokens: 8192
    pricing: {{input_per_mtok: 3, output_per_mtok: 15}}
    capabilities: [tools, vision]
  fake/gpt:
    context_window: 128000
    pricing: {{input_per_mtok: 1, output_per_mtok: 2}}
    capabilities: [tools, vision]
  echo/e1: {{context_window: 100000, free: true}}
connections:
  - id: platform-claude
    owner: platform
    provider: claude
    models: [claude/sonnet]
    credentials: {{api_key_env: ANTHROPIC_TEST_KEY}}
    upstream_names: {{claude/sonnet: {CLAUDE_NAME}}}
  - id: platform-fake
    owner: platform
    provider: fake
    models: [fake/gpt]
    credentials: {{api_key_env: OPENAI_TEST_KEY}}
    upstream_names: {{fake/gpt: gpt-upstream}}
  - {{id: platform-echo, owner: platform, provider: echo, models: [echo/e1]}}
collections:
  claude-first:
    scope: system
    strategy: priority
    fallback_on: [429, 500, 529, timeout, connect_error]  # 529: Anthropic's "overloaded"
    members: [{{model: claude/sonnet, priority: 10}}, {{model: fake/gpt}}]
  gpt-first:
    scope: system
    strategy: priority
    members: [{{model: fake/gpt, priority: 10}}, {{model: claude/sonnet}}]
  flash2.5:
    scope: system
    strategy: round_robin
    members: [{{model: echo/e1}}]
  acme-only:
    scope: organization
    owner: acme
    strategy: priority
    members: [{{model: echo/e1}}]
"""


@dataclass
class Setup:
    anth: FakeAnthropic
    chat: FakeChat
    port: int
    rec: Recorded
    clock: FakeClock
    loop_thread: LoopThread
    app: Any

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, who: str = "alice", **options: Any) -> Any:
        """The SDK client (typed Any: the tests send shapes the SDK's TypedDicts do not list)."""
        return sdk(self.url, KEYS[who], self.rec, **options)

    def raw(
        self, path: str, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = body if isinstance(body, bytes) else orjson.dumps(body) if body is not None else None
        conn.request(
            method, path, body=data, headers={"content-type": "application/json", **(headers or {})}
        )
        resp = conn.getresponse()
        out = resp.read()
        conn.close()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, out

    def release(self) -> None:
        event = self.anth.release
        assert event is not None
        self.loop_thread.loop.call_soon_threadsafe(event.set)


@pytest.fixture
def setup(loop_thread: LoopThread) -> Iterator[Setup]:
    async def make() -> asyncio.Event:
        return asyncio.Event()  # made on the server loop: it belongs there

    anth = FakeAnthropic()
    anth.release = loop_thread.run(make())
    anth.release.set()  # streams run through unless a test holds them
    chat = FakeChat()
    anth_runner, anth.port = loop_thread.start(anth.app())
    chat_runner, chat.port = loop_thread.start(chat.app())
    clock = FakeClock()
    table = build_table(text=config(anth.port, chat.port))
    app = create_app(table, rng=random.Random(3), clock=clock, environ=ENV)
    runner, port = loop_thread.start(app)
    yield Setup(anth, chat, port, Recorded(), clock, loop_thread, app)
    for r in (runner, anth_runner, chat_runner):
        loop_thread.stop(r)


def swapped(sent: bytes, model: str) -> bytes:
    """What the upstream must receive: the client's bytes, only the model value replaced."""
    old = orjson.dumps(orjson.loads(sent)["model"])
    assert sent.count(old) == 1
    return sent.replace(old, orjson.dumps(model))


def error_of(exc: anthropic.APIStatusError) -> dict[str, Any]:
    """The `error` object of an error answer's body."""
    assert isinstance(exc.body, dict)
    error: dict[str, Any] = exc.body["error"]
    return error


def extras(message: Any) -> dict[str, Any]:
    """The `_...` fields routectl added to an answer."""
    return {k: v for k, v in (message.model_extra or {}).items() if k.startswith("_")}


# ================================================================ pass-through to Anthropic


def test_sync_create_passes_the_body_through_byte_for_byte(setup: Setup) -> None:
    client = setup.client()
    raw = client.messages.with_raw_response.create(
        model="claude/sonnet",
        max_tokens=300,
        system=[
            {"type": "text", "text": "You are terse."},
            {"type": "text", "text": "Long policy " * 50, "cache_control": {"type": "ephemeral"}},
        ],
        messages=[
            {"role": "user", "content": 'héllo \u2603 "quoted" \\ back'},
            {"role": "assistant", "content": [{"type": "text", "text": "Yes?"}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Weather?", "cache_control": {"type": "ephemeral"}}
                ],
            },
        ],
        metadata={"user_id": "u-1"},
        stop_sequences=["END"],
        extra_body={"temperature": 0.25, "top_k": 5},  # older API parameters, sent as is
    )
    sent = setup.rec.last_body()
    (call,) = setup.anth.calls
    assert call["raw"] == swapped(sent, CLAUDE_NAME), "only the model differs, byte for byte"
    assert call["headers"]["x-api-key"] == ANTHROPIC_KEY
    assert KEYS["alice"] not in json.dumps(call["headers"]), "the gateway key never goes upstream"
    # the SDK's own API version goes along (routectl's default only when a client sends none)
    assert call["headers"]["anthropic-version"] == setup.rec.headers[-1]["anthropic-version"]
    message = raw.parse()
    assert message.model == "claude/sonnet"
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature == "EqQBCgIYAh"
    assert message.usage.cache_creation_input_tokens == 5
    assert extras(message) == {
        "_selected_model": "claude/sonnet",
        "_routing_table": raw.headers["x-routectl-table"],
    }
    assert raw.headers["x-routectl-selected-model"] == "claude/sonnet"
    assert raw.headers["x-routectl-connection"] == "platform-claude"
    assert raw.headers["request-id"] == raw.headers["x-request-id"] == message._request_id


def test_anthropic_version_and_beta_headers_go_upstream(setup: Setup) -> None:
    client = setup.client(default_headers={"anthropic-version": "2099-01-01"})
    client.messages.create(
        model="claude/sonnet",
        max_tokens=10,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07,files-api-2025-04-14"},
    )
    headers = setup.anth.calls[-1]["headers"]
    assert headers["anthropic-version"] == "2099-01-01"
    assert headers["anthropic-beta"] == "context-1m-2025-08-07,files-api-2025-04-14"
    assert headers["x-api-key"] == ANTHROPIC_KEY


def test_stream_is_relayed_event_by_event(setup: Setup, caplog: pytest.LogCaptureFixture) -> None:
    setup.anth.release = setup.loop_thread.run(_event())
    client = setup.client()
    thinking = {"type": "enabled", "budget_tokens": 2000}
    with (
        caplog.at_level("INFO", logger="routectl.access"),
        client.messages.stream(
            model="claude/sonnet",
            max_tokens=4000,
            thinking=thinking,
            tools=[WEATHER],
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        ) as stream,
    ):
        seen = ""
        for text in stream.text_stream:
            seen += text
            if seen == "Hel":  # the upstream holds the rest until we have seen this delta
                setup.release()
        final = stream.get_final_message()
        headers = stream.response.headers
    assert setup.anth.held_too_long is False, "the first delta was held back: the stream buffers"
    assert seen == "Hello"
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature == "c2lnbmF0dXJl"
    assert final.content[2].input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"
    assert headers["x-routectl-selected-model"] == "claude/sonnet"
    assert headers["request-id"] == headers["x-request-id"]
    # relayed as the upstream wrote it: the bytes the client read are the upstream's events
    assert setup.rec.streams[-1] == b"".join(message_events())
    sent = setup.rec.last_body()
    assert setup.anth.calls[-1]["raw"] == swapped(sent, CLAUDE_NAME)
    # the access line is written once the answer ended, which the client may see a moment before
    deadline = time.monotonic() + 5
    while not [r for r in caplog.records if r.name == "routectl.access"]:
        assert time.monotonic() < deadline, "no access log line"
        time.sleep(0.01)
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "routectl.access"]
    # usage read on the way: input 21 + cache reads 100, output 9
    assert (line["prompt_tokens"], line["completion_tokens"]) == (121, 9)
    assert line["path"] == "/v1/messages" and line["caller"] == "alice"


async def _event() -> asyncio.Event:
    return asyncio.Event()


def test_thinking_blocks_go_back_unchanged_in_the_next_turn(setup: Setup) -> None:
    client = setup.client()
    first = client.messages.create(
        model="claude/sonnet",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[{"role": "user", "content": "Think, then greet."}],
    )
    client.messages.create(
        model="claude/sonnet",
        max_tokens=3000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=[
            {"role": "user", "content": "Think, then greet."},
            {"role": "assistant", "content": [b.to_dict() for b in first.content]},
            {"role": "user", "content": "Again."},
        ],
    )
    second = setup.anth.calls[-1]
    assert second["raw"] == swapped(setup.rec.last_body(), CLAUDE_NAME)
    assert second["body"]["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Brief.",
        "signature": "EqQBCgIYAh",
    }


def test_async_client_create_and_stream(setup: Setup) -> None:
    async def run() -> tuple[Any, Any]:
        client: Any = async_sdk(setup.url, KEYS["alice"], setup.rec)
        made = await client.messages.create(
            model="claude/sonnet", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        async with client.messages.stream(
            model="fake/gpt", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            final = await stream.get_final_message()
        await client.close()
        return made, final

    made, final = asyncio.run(run())
    assert made.content[1].text == "Bonjour" and made.model == "claude/sonnet"
    assert final.content[0].text == "fake stream" and final.model == "fake/gpt"
    assert len(setup.rec.streams) == 1, "the async stream was read and validated"


def test_images_pass_through_and_translate(setup: Setup) -> None:
    client = setup.client()
    content: list[dict[str, Any]] = [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
        {"type": "text", "text": "What are these?"},
    ]
    client.messages.create(
        model="claude/sonnet", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    assert setup.anth.calls[-1]["raw"] == swapped(setup.rec.last_body(), CLAUDE_NAME)
    client.messages.create(
        model="fake/gpt", max_tokens=50, messages=[{"role": "user", "content": content}]
    )
    sent = setup.chat.calls[-1]["body"]
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}},
                {"type": "text", "text": "What are these?"},
            ],
        }
    ]
    assert sent["model"] == "gpt-upstream" and sent["max_tokens"] == 50


# ================================================================ translated to OpenAI-compatible


def test_tool_loop_through_an_openai_upstream(setup: Setup) -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
    }
    setup.chat.answers = [chat_answer(None, tool_calls=[call]), chat_answer("Sunny in Paris.")]
    client = setup.client()
    history: list[dict[str, Any]] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(
        model="fake/gpt",
        max_tokens=200,
        system=[{"type": "text", "text": "Use tools.", "cache_control": {"type": "ephemeral"}}],
        tools=[WEATHER],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=history,
    )
    assert first.stop_reason == "tool_use"
    (use,) = first.content
    assert use.type == "tool_use" and use.id == "call_9" and use.input == {"city": "Paris"}
    history += [
        {"role": "assistant", "content": [use.to_dict()]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_9", "content": "sunny, 24C"}],
        },
    ]
    second = client.messages.create(
        model="fake/gpt", max_tokens=200, tools=[WEATHER], messages=history
    )
    assert second.content[0].text == "Sunny in Paris." and second.stop_reason == "end_turn"
    assert (second.usage.input_tokens, second.usage.output_tokens) == (30, 12)
    one, two = (c["body"] for c in setup.chat.calls)
    assert one["messages"][0] == {"role": "system", "content": "Use tools."}
    assert one["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather for a city",
                "parameters": WEATHER["input_schema"],
            },
        }
    ]
    assert (one["tool_choice"], one["parallel_tool_calls"]) == ("required", False)
    assert two["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_9",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_9", "content": "sunny, 24C"},
    ]
    assert setup.chat.calls[0]["headers"]["Authorization"] == "Bearer sk-openai-connection"


def test_streamed_tool_call_through_an_openai_upstream(setup: Setup) -> None:
    setup.chat.streams = [
        [
            chunk({"role": "assistant", "content": "Checking."}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": "Pa'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}),
            chunk({}, "tool_calls"),
            usage_chunk(40, 8),
            b"data: [DONE]\n\n",
        ]
    ]
    with setup.client().messages.stream(
        model="fake/gpt",
        max_tokens=100,
        tools=[WEATHER],
        messages=[{"role": "user", "content": "Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"city": "Paris"}
    assert final.stop_reason == "tool_use" and final.model == "fake/gpt"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (40, 8)
    sent = setup.chat.calls[-1]["body"]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_thinking_and_cache_control_are_dropped_for_an_openai_upstream(setup: Setup) -> None:
    setup.client().messages.create(
        model="fake/gpt",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        system=[{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "Q"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hm", "signature": "sig"},
                    {"type": "text", "text": "A"},
                ],
            },
            {"role": "user", "content": "Q2"},
        ],
    )
    sent = setup.chat.calls[-1]["body"]
    assert "thinking" not in sent
    assert sent["messages"] == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {"role": "assistant", "content": "A"},
        {"role": "user", "content": "Q2"},
    ]


def test_an_untranslatable_request_skips_openai_members(setup: Setup) -> None:
    search = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
    client = setup.client()
    raw = client.messages.with_raw_response.create(
        model="collection/gpt-first",
        max_tokens=100,
        tools=[search],
        messages=[{"role": "user", "content": "news?"}],
    )
    assert raw.headers["x-routectl-connection"] == "platform-claude"
    assert setup.chat.calls == [], "the OpenAI member was never tried"
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(
            model="fake/gpt",
            max_tokens=100,
            tools=[search],
            messages=[{"role": "user", "content": "news?"}],
        )
    assert info.value.type == "invalid_request_error"
    assert "'web_search_20250305' tool cannot be sent to an OpenAI-compatible upstream" in str(
        info.value
    )


# ================================================================ echo, fallback, errors


def test_echo_answers_in_messages_format_with_a_forced_tool(setup: Setup) -> None:
    client = setup.client()
    text = client.messages.create(
        model="echo/e1", max_tokens=20, messages=[{"role": "user", "content": "ping me"}]
    )
    assert text.content[0].text == "ping me" and text.stop_reason == "end_turn"
    forced = client.messages.create(
        model="echo/e1",
        max_tokens=20,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "weather"},
        messages=[{"role": "user", "content": "Lyon"}],
    )
    (use,) = forced.content
    assert use.type == "tool_use" and use.name == "weather" and use.input == {"city": "Lyon"}
    assert forced.stop_reason == "tool_use"
    with client.messages.stream(
        model="echo/e1",
        max_tokens=20,
        tools=[WEATHER],
        tool_choice={"type": "any"},
        messages=[{"role": "user", "content": "Nice"}],
    ) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].input == {"city": "Nice"}
    assert streamed.stop_reason == "tool_use"


def test_fallback_crosses_dialects_and_keeps_the_messages_format(setup: Setup) -> None:
    setup.anth.script = ["429:7", "529"]
    client = setup.client()
    raw = client.messages.with_raw_response.create(
        model="collection/claude-first", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    )
    message = raw.parse()
    assert message.type == "message" and message.content[0].text == "fake answer"
    assert message.model == "fake/gpt"
    assert extras(message) == {
        "_collection_routed": True,
        "_collection_name": "claude-first",
        "_routing_strategy": "priority",
        "_selected_model": "fake/gpt",
        "_fallback_used": True,
        "_fallback_reason": "rate_limited",
        "_original_selection": "claude/sonnet",
        "_routing_table": raw.headers["x-routectl-table"],
    }
    state = setup.app[RUNTIME].state
    assert state.cooldowns[("platform-claude", "claude/sonnet")].until == setup.clock.t + 7
    setup.clock.t += 8  # the cooldown is over; the stream falls back on a 529 before its first byte
    with client.messages.stream(
        model="collection/claude-first", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
        assert stream.response.headers["x-routectl-connection"] == "platform-fake"
    assert final.content[0].text == "fake stream" and len(setup.anth.calls) == 2


def test_errors_answer_in_anthropic_shape(setup: Setup) -> None:
    client = setup.client()
    with pytest.raises(anthropic.NotFoundError) as nf:
        client.messages.create(
            model="nope/x", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert nf.value.type == "not_found_error" and error_of(nf.value)["code"] == "model_not_found"
    assert nf.value.request_id == nf.value.response.headers["x-request-id"]
    with pytest.raises(anthropic.AuthenticationError) as auth:
        setup.client("bob").messages.create(
            model="echo/e1", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert auth.value.type == "authentication_error"
    with pytest.raises(anthropic.PermissionDeniedError) as denied:
        setup.client("carol").messages.create(
            model="collection/acme-only", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert error_of(denied.value)["required_scope"] == "organization"
    setup.app[RUNTIME].state.unavailable["platform-echo"] = "test: down"
    with pytest.raises(anthropic.ServiceUnavailableError) as none:
        client.messages.create(
            model="collection/flash2.5", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    error = error_of(none.value)
    assert (error["type"], error["code"]) == ("overloaded_error", "collection_no_models")
    assert error["details"]["total_members"] == 1
    status, headers, body = setup.raw(
        "/v1/messages",
        {"model": "echo/e1", "messages": [{"role": "user", "content": "x"}]},
        {"x-api-key": KEYS["alice"]},
    )
    assert status == 400 and headers["request-id"] == headers["x-request-id"]
    assert json.loads(body) == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "'max_tokens' is required and must be a positive integer",
            "code": "invalid_request",
        },
    }


def test_upstream_errors_reach_the_client_in_anthropic_shape(setup: Setup) -> None:
    client = setup.client()
    setup.anth.script = ["400"]
    with pytest.raises(anthropic.BadRequestError) as native:
        client.messages.create(
            model="claude/sonnet", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert native.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "fake 400"},
    }
    setup.chat.script = ["400"]
    with pytest.raises(anthropic.BadRequestError) as foreign:
        client.messages.create(
            model="fake/gpt", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert foreign.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "fake 400",
            "upstream_code": "fake_code",
        },
    }
    assert foreign.value.response.headers["x-routectl-connection"] == "platform-fake"


def test_a_stream_cut_mid_way_ends_with_an_error_event(setup: Setup) -> None:
    setup.anth.script = ["drop"]
    client = setup.client()
    with (
        pytest.raises(anthropic.APIStatusError) as info,
        client.messages.stream(
            model="claude/sonnet", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        for _ in stream:
            pass
    assert error_of(info.value)["type"] == "api_error"
    validate(setup.rec.streams[-1])  # the client still read a well-formed stream


def test_a_body_over_the_limit_is_a_413_in_anthropic_shape(loop_thread: LoopThread) -> None:
    table = build_table(text=config(9, 9))
    runner, port = loop_thread.start(create_app(table, environ=ENV, max_body_bytes=1000))
    try:
        client = sdk(f"http://127.0.0.1:{port}", KEYS["alice"], Recorded())
        with pytest.raises(anthropic.APIStatusError) as info:
            client.messages.create(
                model="echo/e1", max_tokens=5, messages=[{"role": "user", "content": "x" * 2000}]
            )
    finally:
        loop_thread.stop(runner)
    assert info.value.status_code == 413
    assert error_of(info.value) == {
        "type": "request_too_large",
        "message": "Request body is larger than 1000 bytes",
        "code": "request_too_large",
    }


def test_x_api_key_and_bearer_name_the_same_caller(setup: Setup) -> None:
    body = {"model": "echo/e1", "max_tokens": 5, "messages": [{"role": "user", "content": "who"}]}
    for headers in ({"x-api-key": KEYS["alice"]}, {"Authorization": f"Bearer {KEYS['alice']}"}):
        status, _, out = setup.raw("/v1/messages", body, headers)
        assert status == 200 and json.loads(out)["content"][0]["text"] == "who"
    assert setup.raw("/v1/messages", body, {"x-api-key": "wrong"})[0] == 401
    assert setup.raw("/v1/messages", body, {})[0] == 401
    metrics = setup.app[RUNTIME].metrics.request_counts
    assert metrics[("/v1/messages", "echo/e1", 200)] == 2
    assert metrics[("/v1/messages", "", 401)] == 2


def test_routectl_keys_are_taken_out_of_the_body(setup: Setup) -> None:
    body = {
        "model": "claude/sonnet",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "retry": {"count": 1, "on_codes": [429]},
        "timeout": {"call_timeout": 5000},
    }
    status, _, _ = setup.raw("/v1/messages", body, {"x-api-key": KEYS["alice"]})
    assert status == 200
    assert setup.anth.calls[-1]["body"] == {
        "model": CLAUDE_NAME,
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
    }
    lb = {"type": "weight_based", "models": [{"model": "echo/e1", "weight": 1.0}]}
    status, _, out = setup.raw(
        "/v1/messages",
        {"load_balancer": lb, "max_tokens": 5, "messages": [{"role": "user", "content": "lb"}]},
        {"x-api-key": KEYS["alice"]},
    )
    assert status == 200 and json.loads(out)["_selected_model"] == "echo/e1"


def test_raw_streams_are_named_events(setup: Setup) -> None:
    body = {
        "model": "echo/e1",
        "max_tokens": 5,
        "stream": True,
        "messages": [{"role": "user", "content": "a b"}],
    }
    status, headers, out = setup.raw("/v1/messages", body, {"x-api-key": KEYS["alice"]})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    assert headers["request-id"] == headers["x-request-id"]
    names = [name for name, _ in validate(out)]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]


# ================================================================ count_tokens, models, seeds


def test_count_tokens_forwarded_or_estimated(setup: Setup) -> None:
    client = setup.client()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "count " * 40}]
    raw = client.messages.with_raw_response.count_tokens(
        model="claude/sonnet", messages=messages, tools=[WEATHER]
    )
    assert raw.parse().input_tokens == 4242
    assert raw.headers["x-routectl-token-count"] == "upstream"
    (counted,) = setup.anth.counts
    assert counted["raw"] == swapped(setup.rec.last_body("/v1/messages/count_tokens"), CLAUDE_NAME)
    assert counted["headers"]["x-api-key"] == ANTHROPIC_KEY
    estimate = client.messages.with_raw_response.count_tokens(model="fake/gpt", messages=messages)
    assert estimate.headers["x-routectl-token-count"] == "estimate"
    assert estimate.parse().input_tokens == len("count " * 40) // 4 + 4
    assert setup.chat.calls == []
    setup.anth.count_script = ["529"]  # the upstream cannot answer now: the estimate does
    busy = client.messages.with_raw_response.count_tokens(model="claude/sonnet", messages=messages)
    assert busy.headers["x-routectl-token-count"] == "estimate"
    assert setup.app[RUNTIME].state.cooldowns == {}, "counting books no health"


def test_count_tokens_moves_no_strategy_state(setup: Setup) -> None:
    state = setup.app[RUNTIME].state
    before = (dict(state.rr_last), dict(state.usage))
    for _ in range(3):
        setup.client().messages.count_tokens(
            model="collection/flash2.5", messages=[{"role": "user", "content": "x"}]
        )
    assert (dict(state.rr_last), dict(state.usage)) == before


def test_models_in_anthropic_format_when_asked(setup: Setup) -> None:
    client = setup.client()
    ids = [m.id for m in client.models.list(limit=2)]  # pages of two, followed by the SDK
    assert ids[:3] == ["claude/sonnet", "echo/e1", "fake/gpt"]
    assert {"collection/flash2.5", "collection/acme-only", "collection/claude-first"} <= set(ids)
    page = client.models.list(limit=3)
    assert page.has_more is True and page.last_id == "fake/gpt"
    (sonnet,) = [m for m in page.data if m.id == "claude/sonnet"]
    assert (sonnet.max_input_tokens, sonnet.max_tokens, sonnet.type) == (200000, 8192, "model")
    oa = openai.OpenAI(base_url=setup.url + "/v1", api_key=KEYS["alice"], max_retries=0)
    assert [m.id for m in oa.models.list()] == ids, (
        "the same names, OpenAI's list without the header"
    )


def test_the_seed_documents_example_runs_as_written(setup: Setup) -> None:
    # collection-flash2.5.txt, Example 1: the base_url ends in /v1 and the SDK appends /v1/messages
    client: Any = sdk(setup.url + "/v1", KEYS["alice"], setup.rec)
    response = client.messages.create(
        model="collection/flash2.5",
        max_tokens=256,
        messages=[{"role": "user", "content": "I can't reset my password"}],
    )
    assert response.content[0].text == "I can't reset my password"
    assert setup.rec.requests[-1][0] == "/v1/v1/messages"
    assert response.usage.output_tokens + response.usage.input_tokens > 0


def test_the_recorder_validates_every_stream_the_sdk_reads(setup: Setup) -> None:
    # every SSE body an SDK client of this module reads goes through the validator: the hook runs
    with setup.client().messages.stream(
        model="echo/e1", max_tokens=5, messages=[{"role": "user", "content": "v"}]
    ) as s:
        s.until_done()
    assert len(setup.rec.streams) == 1
    broken = b'event: message_start\ndata: {"type":"message_start"}\n\n'
    with pytest.raises(AssertionError):
        validate(broken)


def test_no_error_is_logged_for_a_normal_request(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="routectl"):
        setup.client().messages.create(
            model="echo/e1", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
