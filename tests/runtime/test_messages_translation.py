"""The Messages <-> Chat Completions translation over a recorded-style corpus, both ways, snapshot
tested; every stream it produces goes through the SSE event-sequence validator. Pure."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from messages_corpus import (
    CHAT_ANSWERS,
    CHUNK_STREAMS,
    EVENT_STREAMS,
    MESSAGE_ANSWERS,
    REFUSED,
    REQUESTS,
)
from messages_fakes import sse
from messages_sse import StreamError, validate
from syrupy.assertion import SnapshotAssertion

from routectl.runtime.dialects.anthropic import from_anthropic, to_anthropic
from routectl.runtime.dialects.anthropic_stream import StreamTranslator
from routectl.runtime.dialects.base import replace_model
from routectl.runtime.dialects.echo import echo_events, forced_call
from routectl.runtime.dialects.stream import ChunkTranslator
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.anthropic_messages import (
    ANTHROPIC_MESSAGES,
    estimate_tokens,
    parse_messages_request,
)
from routectl.runtime.ingress.chat_to_messages import error_type, to_message
from routectl.runtime.ingress.messages_stream import ChunkEvents, NativeWatch
from routectl.runtime.ingress.messages_to_chat import DROPPED_KEYS, Untranslatable, to_chat

# ================================================================ requests


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_request_to_chat_and_back(name: str, snapshot: SnapshotAssertion) -> None:
    request = REQUESTS[name]
    original = orjson.dumps(request)
    chat = to_chat(request)
    assert orjson.dumps(request) == original, "the client's body is not mutated"
    assert not DROPPED_KEYS & set(chat)
    assert orjson.dumps(chat).count(b"cache_control") == 0
    # the reverse direction: what an Anthropic upstream gets when an OpenAI client sends `chat`
    back = to_anthropic(chat, "claude-upstream", None)
    assert {"chat": chat, "back_to_messages": back} == snapshot


def test_a_lossless_request_survives_the_round_trip() -> None:
    request = {
        "model": "m",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "yo"}]},
            {"role": "user", "content": "again"},  # one text block would come back as this
        ],
        "stop_sequences": ["END"],
        "temperature": 0.2,
    }
    back = to_anthropic(to_chat(request), "m", None)
    assert back == request


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_has_no_translation_is_refused(name: str) -> None:
    body, what = REFUSED[name]
    with pytest.raises(Untranslatable) as info:
        to_chat({"model": "m", "max_tokens": 5, **body})
    assert info.value.status == 400 and info.value.code == "invalid_request"
    assert info.value.message.startswith(f"{what} cannot be sent to an OpenAI-compatible upstream")


def test_dropped_keys_are_documented() -> None:
    with open("docs/runtime.md") as f:
        docs = f.read()
    missing = [k for k in sorted(DROPPED_KEYS) if f"`{k}`" not in docs]
    assert missing == [], "every key the translation drops is in docs/runtime.md's table"


# ================================================================ answers


@pytest.mark.parametrize("name", sorted(CHAT_ANSWERS))
def test_chat_answer_to_message(name: str, snapshot: SnapshotAssertion) -> None:
    message = to_message(CHAT_ANSWERS[name])
    for block in message["content"]:
        assert block["type"] != "text" or block["text"], "never an empty text block"
    assert message == snapshot


@pytest.mark.parametrize("name", sorted(MESSAGE_ANSWERS))
def test_message_answer_to_chat(name: str, snapshot: SnapshotAssertion) -> None:
    assert from_anthropic(MESSAGE_ANSWERS[name], "claude/sonnet", 1733000000) == snapshot


# Anthropic stop_reason -> OpenAI finish_reason -> Anthropic: stop_sequence and pause_turn come
# back as end_turn (OpenAI has one "stop" for all three); the rest survive
@pytest.mark.parametrize(
    ("reason", "finish", "back"),
    [
        ("end_turn", "stop", "end_turn"),
        ("max_tokens", "length", "max_tokens"),
        ("stop_sequence", "stop", "end_turn"),
        ("tool_use", "tool_calls", "tool_use"),
        ("refusal", "content_filter", "refusal"),
        ("pause_turn", "stop", "end_turn"),
    ],
)
def test_every_stop_reason_both_ways(reason: str, finish: str, back: str) -> None:
    chat = from_anthropic(MESSAGE_ANSWERS[reason], "m", 1)
    assert chat["choices"][0]["finish_reason"] == finish
    assert to_message(chat)["stop_reason"] == back


def test_tool_arguments_that_are_not_an_object_are_a_502() -> None:
    answer = CHAT_ANSWERS["tool_use"]
    broken = orjson.loads(orjson.dumps(answer))
    broken["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "[1, 2"
    with pytest.raises(RoutingError) as info:
        to_message(broken)
    assert (info.value.status, info.value.code) == (502, "upstream_error")


# ================================================================ streams


def _feed(translator: ChunkTranslator, chunks: list[bytes]) -> bytes:
    return b"".join(translator.feed(c) for c in chunks) + translator.close()


def _events(raw: bytes) -> list[Any]:
    return [[name, data] for name, data in validate(raw)]


@pytest.mark.parametrize("name", sorted(CHUNK_STREAMS))
def test_chunk_stream_to_events(name: str, snapshot: SnapshotAssertion) -> None:
    chunks = CHUNK_STREAMS[name]
    translator = ChunkEvents("fake/gpt", 17)
    out = _feed(translator, chunks)
    # split anywhere, CRLF or not: the same events
    whole = b"".join(chunks)
    bytewise = ChunkEvents("fake/gpt", 17)
    assert _feed(bytewise, [whole[i : i + 1] for i in range(len(whole))]) == out
    assert _feed(ChunkEvents("fake/gpt", 17), [whole.replace(b"\n", b"\r\n")]) == out
    assert {
        "events": _events(out),
        "error": translator.error,
        "usage": translator.usage,
    } == snapshot


@pytest.mark.parametrize("name", sorted(EVENT_STREAMS))
def test_event_stream_to_chunks(name: str, snapshot: SnapshotAssertion) -> None:
    events = EVENT_STREAMS[name]
    validate(b"".join(events))  # the corpus itself is well-formed
    translator = StreamTranslator("claude/sonnet", 1733000000, include_usage=True)
    out = _feed(translator, events)
    chunks = [
        orjson.loads(line[6:]) if line != b"data: [DONE]" else "[DONE]"
        for line in out.split(b"\n\n")
        if line
    ]
    assert chunks == snapshot


@pytest.mark.parametrize("name", sorted(EVENT_STREAMS))
def test_a_native_stream_passes_unchanged_and_its_usage_is_read(name: str) -> None:
    events = EVENT_STREAMS[name]
    watch = NativeWatch()
    whole = b"".join(events)
    split = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    assert b"".join(watch.feed(c) for c in split) == whole
    assert watch.close() == b""
    if name == "error_mid_stream":
        assert watch.error == "overloaded_error"
    else:
        assert watch.error is None
        assert watch.usage == {"prompt_tokens": 121, "completion_tokens": 9, "total_tokens": 130}


def test_the_watch_reads_only_the_stream_s_own_counts_and_markers() -> None:
    # text that quotes a usage key, an event line and a message_stop: escaped inside JSON strings
    text = 'say "output_tokens": 999\nevent: message_stop\n"error":{"type":"x"}'
    delta = {"type": "text_delta", "text": text}
    events = EVENT_STREAMS["text_only"]
    tricky = sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
    stream = b"".join([*events[:3], tricky])  # cut before the block ends: no message_stop yet
    watch = NativeWatch()
    for i in range(0, len(stream), 5):
        watch.feed(stream[i : i + 5])
    assert watch.usage == {"prompt_tokens": 121, "completion_tokens": 1, "total_tokens": 122}
    assert watch.error is None
    assert validate(stream + watch.close(), complete=True)[-1][0] == "error"


def test_a_native_stream_that_stops_early_gets_an_error_event() -> None:
    watch = NativeWatch()
    head = b"".join(EVENT_STREAMS["text_only"][:5])
    assert watch.feed(head) == head
    tail = watch.close()
    assert watch.error == "incomplete_stream"
    validate(head + tail)  # a well-formed stream again: it ends with the error
    with pytest.raises(StreamError):
        validate(head)


def test_echo_streams_a_forced_tool_call_as_events() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "n": {"type": "integer"}},
                    "required": ["city", "n"],
                },
            },
        }
    ]
    body = {
        "messages": [{"role": "user", "content": "Oslo"}],
        "tools": tools,
        "tool_choice": "required",
        "stream_options": {"include_usage": True},
    }
    assert forced_call(body) == {"name": "weather", "arguments": '{"city":"Oslo","n":0}'}
    assert forced_call({**body, "tool_choice": "auto"}) is None
    chunks, _ = echo_events(body, "echo/e1", 3, "c1", 1)
    events = validate(_feed(ChunkEvents("echo/e1", 3), chunks))
    deltas = [d["delta"] for n, d in events if n == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": '{"city":"Oslo","n":0}'}]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


# ================================================================ bytes as sent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"model":"a/b","max_tokens":1}', b'{"model":"up","max_tokens":1}'),
        (b'{ "max_tokens" : 1 ,\n "model" :\t"a/b" }', b'{ "max_tokens" : 1 ,\n "model" :\t"up" }'),
        # "model" as a value, inside text, and behind an escaped quote: not keys
        (
            b'{"messages":[{"content":"the \\"model\\": a/b","x":"model"}],"a\\"model":1,"model":"a/b"}',
            b'{"messages":[{"content":"the \\"model\\": a/b","x":"model"}],"a\\"model":1,"model":"up"}',
        ),
        (
            b'{"model":"a/b","x":"\\u00e9\\ud83d\\ude00 1.0e3"}',
            b'{"model":"up","x":"\\u00e9\\ud83d\\ude00 1.0e3"}',
        ),
        # not surely the top-level key: re-encoded by the caller
        (b'{"tools":[{"input_schema":{"model":"a/b"}}],"model":"a/b"}', None),
        (b'{"model":"a/b","model":"a/b"}', None),
        (b'{"mod\\u0065l":"a/b"}', None),
        (b'{"model":"other"}', None),
        (b'{"max_tokens":1}', None),
    ],
)
def test_replace_model_keeps_every_other_byte(raw: bytes, expected: bytes | None) -> None:
    assert replace_model(raw, "a/b", "up") == expected


def test_parse_keeps_the_raw_bytes_only_when_they_can_go_as_sent() -> None:
    raw = b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}]}'
    call = parse_messages_request(raw, {"anthropic-version": "2023-06-01"})
    assert call.raw == raw and call.headers is None
    with_keys = b'{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"retry":{"count":1}}'
    call = parse_messages_request(
        with_keys, {"anthropic-beta": "b1", "anthropic-version": "2099-01-01"}
    )
    assert call.raw is None and "retry" not in call.body
    assert call.headers == {"anthropic-version": "2099-01-01", "anthropic-beta": "b1"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1]", "request body must be a JSON object"),
        (
            b'{"model":"m","max_tokens":5,"messages":[]}',
            "'messages' is required and must be a non-empty list",
        ),
        (
            b'{"model":"m","max_tokens":5,"messages":[{"role":"system","content":"x"}]}',
            "each message needs a 'role' (user or assistant) and 'content'",
        ),
        (
            b'{"model":"m","messages":[{"role":"user","content":"x"}]}',
            "'max_tokens' is required and must be a positive integer",
        ),
        (
            b'{"model":"m","max_tokens":true,"messages":[{"role":"user","content":"x"}]}',
            "'max_tokens' is required and must be a positive integer",
        ),
        (
            b'{"max_tokens":5,"messages":[{"role":"user","content":"x"}]}',
            "'model' is required and must be a string",
        ),
        (
            b'{"model":"m","max_tokens":5,"stream":"yes","messages":[{"role":"user","content":"x"}]}',
            "'stream' must be a boolean",
        ),
    ],
)
def test_malformed_requests_are_400(raw: bytes, message: str) -> None:
    with pytest.raises(RoutingError) as info:
        parse_messages_request(raw, {})
    assert (info.value.status, info.value.message) == (400, message)


# ================================================================ errors, estimates


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_types_by_status(status: int, kind: str) -> None:
    assert error_type(status) == kind


def test_error_body_carries_routectl_code_and_details() -> None:
    error = RoutingError(
        "collection_no_models", 503, "No models", {"details": {"total_members": 2}}
    )
    assert ANTHROPIC_MESSAGES.error_body(error) == {
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "No models",
            "code": "collection_no_models",
            "details": {"total_members": 2},
        },
    }
    event = ANTHROPIC_MESSAGES.stream_error(
        RoutingError("upstream_error", 502, "upstream stream timeout")
    )
    assert validate(event) == [
        (
            "error",
            {
                "type": "error",
                "error": {
                    "type": "api_error",
                    "message": "upstream stream timeout",
                    "code": "upstream_error",
                },
            },
        )
    ]
    foreign = ANTHROPIC_MESSAGES.foreign_error(422, b"not json")
    assert orjson.loads(foreign) == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "upstream answered 422"},
    }


def test_the_estimate_counts_text_tools_and_images() -> None:
    text = {"messages": [{"role": "user", "content": "x" * 400}]}
    assert estimate_tokens(text) == (100 + 4, False)
    image = {
        "messages": [
            {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "u"}}]}
        ]
    }
    assert estimate_tokens(image) == (1600 + 4, True)
    tools = {**text, "tools": [{"name": "weather", "input_schema": {"type": "object"}}]}
    assert estimate_tokens(tools)[0] > estimate_tokens(text)[0]
    system = {**text, "system": [{"type": "text", "text": "y" * 40}]}
    assert estimate_tokens(system)[0] == 110 + 4
