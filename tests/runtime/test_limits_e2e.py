"""Limits over HTTP (in-process counters): what OpenAI's SDK sees on a refusal, the x-ratelimit
headers on every answer (JSON, streams, errors) and the settlement from a stream's usage."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from conftest import KEYS, FakeUpstream, Gateway, LoopThread
from openai import OpenAI

from routectl.runtime.keys import RUNTIME

pytestmark = pytest.mark.e2e

# `collections` is the last part of the base config: a top-level `limits` can follow it there
LIMITS_YAML = """
limits:
  users:
    alice: {requests_per_minute: 3}
    bob: {tokens_per_minute: 1000}
    carol: {usd_per_day: 0.001}
"""
MESSAGES: Any = [{"role": "user", "content": "hello"}]
USAGE_CHUNK = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"up",'
    b'"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":400,"total_tokens":412}}\n\n'
)


def _client(gw: Gateway, who: str) -> OpenAI:
    return OpenAI(api_key=KEYS[who], base_url=gw.base_url, max_retries=0)


def test_the_sdk_sees_429_rate_limited_with_retry_after_and_headers_on_every_answer(
    start: Callable[..., Gateway],
) -> None:
    gw = start(collections=LIMITS_YAML)
    client = _client(gw, "alice")
    seen = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="fake/m1", messages=MESSAGES)
        assert raw.http_response.status_code == 200
        seen.append(raw.headers["x-ratelimit-remaining-requests"])
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert raw.headers["x-ratelimit-reset-requests"] == "1m0s"  # the clock stands still
    assert seen == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="fake/m1", messages=MESSAGES)
    response = refused.value.response
    assert response.headers["Retry-After"] == "60"
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-request-id"] and response.headers["x-routectl-table"]
    error = response.json()["error"]
    assert error["code"] == "rate_limited"
    assert error["details"]["subject"] == "alice"
    # the clock moves past the window: admitted again
    gw.clock.t += 60
    client.chat.completions.create(model="fake/m1", messages=MESSAGES)
    # callers without limits get no such headers
    free = _client(gw, "bob").chat.completions.with_raw_response.create(
        model="fake/m1", messages=MESSAGES
    )
    assert "x-ratelimit-limit-requests" not in free.headers


def test_a_streamed_answer_carries_the_headers_and_an_error_answer_too(
    start: Callable[..., Gateway], fake: FakeUpstream
) -> None:
    gw = start(collections=LIMITS_YAML)
    with _client(gw, "alice").chat.completions.with_streaming_response.create(
        model="fake/m1", messages=MESSAGES, stream=True
    ) as stream:
        assert stream.headers["x-ratelimit-remaining-requests"] == "2"
        assert b"[DONE]" in stream.read()
    fake.script["m1"] = ["400"]  # the upstream refuses: its error still carries the headers
    with pytest.raises(openai.BadRequestError) as failed:
        _client(gw, "alice").chat.completions.create(model="fake/m1", messages=MESSAGES)
    assert failed.value.response.headers["x-ratelimit-remaining-requests"] == "1"


def test_a_stream_s_usage_settles_the_token_limit_and_the_client_gets_its_own_stream(
    start: Callable[..., Gateway], fake: FakeUpstream, loop_thread: LoopThread
) -> None:
    gw = start(collections=LIMITS_YAML)
    fake.stream_chunks = [*fake.stream_chunks[:-1], USAGE_CHUNK, fake.stream_chunks[-1]]
    client = _client(gw, "bob")
    with client.chat.completions.with_streaming_response.create(
        model="fake/m1", messages=MESSAGES, stream=True
    ) as stream:
        reserved = int(stream.headers["x-ratelimit-remaining-tokens"])
        events = [line for line in stream.iter_lines() if line.startswith("data: {")]
    assert reserved == 1000 - 5  # "hello": 5 characters / 4 + 4 per message
    # the gateway asked the upstream for the usage; the client, which did not, gets no usage chunk
    assert fake.calls[-1]["body"]["stream_options"] == {"include_usage": True}
    assert all(json.loads(e[6:])["choices"] for e in events)
    loop_thread.run(gw.app[RUNTIME].limiter.drain())  # the settlement runs after the answer
    raw = client.chat.completions.with_raw_response.create(model="fake/m1", messages=MESSAGES)
    # 412 used by the stream, 5 reserved now
    assert raw.headers["x-ratelimit-remaining-tokens"] == str(1000 - 412 - 5)
    # a client that asks for usage gets the chunk, and the settlement reads it as well
    with client.chat.completions.with_streaming_response.create(
        model="fake/m1",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    ) as stream:
        lines = [line for line in stream.iter_lines() if line.startswith("data: {")]
    assert any(json.loads(e[6:])["choices"] == [] for e in lines)


def test_a_translated_stream_s_usage_settles_too(
    start: Callable[..., Gateway], loop_thread: LoopThread
) -> None:
    # `echo` speaks no client format natively: its stream goes through the format's stream
    # translation (not the relay's model stamp), which reads the usage the same way
    gw = start(collections=LIMITS_YAML)
    client = _client(gw, "bob")
    with client.chat.completions.with_streaming_response.create(
        model="echo/e1", messages=MESSAGES, stream=True
    ) as stream:
        events = [line for line in stream.iter_lines() if line.startswith("data: {")]
    assert events and all(json.loads(e[6:])["choices"] for e in events)  # no usage chunk
    with client.chat.completions.with_streaming_response.create(
        model="echo/e1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    ) as stream:
        usage = [json.loads(e[6:])["usage"] for e in stream.iter_lines() if '"usage":{' in e]
    assert len(usage) == 1
    used = usage[0]["prompt_tokens"] + usage[0]["completion_tokens"]
    loop_thread.run(gw.app[RUNTIME].limiter.drain())
    raw = client.chat.completions.with_raw_response.create(model="echo/e1", messages=MESSAGES)
    # both streams settled at what echo reported (the same prompt: the same usage), 5 reserved
    assert raw.headers["x-ratelimit-remaining-tokens"] == str(1000 - 2 * used - 5)


def test_a_budget_refusal_is_quota_exceeded_until_the_end_of_the_utc_day(
    start: Callable[..., Gateway],
) -> None:
    gw = start(collections=LIMITS_YAML)
    client = _client(gw, "carol")
    big: Any = [{"role": "user", "content": "x" * 800}]  # ~204 tokens: $0.0006 at $3/Mtok in
    client.chat.completions.create(model="fake/m1", messages=big)
    # the fake upstream's usage (10 in, 20 out) costs $0.00015: settled, 0.00085 left
    client.chat.completions.create(model="fake/m1", messages=big)
    client.chat.completions.create(model="fake/m1", messages=big)
    with pytest.raises(openai.RateLimitError) as refused:
        for _ in range(10):
            client.chat.completions.create(model="fake/m1", messages=big)
    response = refused.value.response
    assert response.json()["error"]["code"] == "quota_exceeded"
    midnight = (int(gw.clock.t) // 86400 + 1) * 86400
    assert response.headers["Retry-After"] == str(midnight - int(gw.clock.t))
    # free models are still served: they spend nothing
    client.chat.completions.create(model="echo/e1", messages=big)


def test_the_anthropic_format_gets_the_headers_and_its_own_error_shape(
    start: Callable[..., Gateway],
) -> None:
    gw = start(collections=LIMITS_YAML)
    body = {"model": "echo/e1", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    headers = {
        "x-api-key": KEYS["alice"],
        "anthropic-version": "2023-06-01",
        "Content-Type": "application/json",
    }

    def post() -> tuple[int, dict[str, str], Any]:
        conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
        try:
            conn.request("POST", "/v1/messages", json.dumps(body), headers)
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), json.loads(resp.read())
        finally:
            conn.close()

    for remaining in ("2", "1", "0"):
        status, got, _ = post()
        assert status == 200 and got["x-ratelimit-remaining-requests"] == remaining
    status, got, error = post()
    assert status == 429 and got["Retry-After"] == "60"
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert error["error"]["code"] == "rate_limited"
