"""The demo's `echo` provider answers like a real model: max_tokens, stop, n, tools, refusal,
streamed usage (through the official SDK, every answer checked against OpenAI's schemas)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from conftest import KEYS, Gateway
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
TEXT = "the quick brown fox jumps over the lazy dog"
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": TEXT}]
WEATHER: ChatCompletionToolParam = {
    "type": "function",
    "function": {
        "name": "weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS["carol"], max_retries=0, timeout=10)


def create(gw: Gateway, **kwargs: Any) -> Any:
    return client(gw).chat.completions.create(model="echo/e1", messages=ASK, **kwargs)


def test_max_tokens_truncates_with_finish_reason_length(start: Start) -> None:
    gw = start()
    for key in ("max_tokens", "max_completion_tokens"):
        reply = create(gw, **{key: 2})
        choice = reply.choices[0]
        assert choice.finish_reason == "length"  # was "stop", with the whole text
        assert choice.message.content == TEXT[:8]
        assert reply.usage.completion_tokens == 2
    whole = create(gw, max_tokens=100).choices[0]
    assert (whole.finish_reason, whole.message.content) == ("stop", TEXT)
    assert whole.message.refusal is None
    assert "refusal" in whole.message.model_dump(exclude_unset=True)  # sent, as null


def test_stop_and_n(start: Start) -> None:
    gw = start()
    cut = create(gw, stop=["fox", "dog"]).choices[0]
    assert (cut.message.content, cut.finish_reason) == ("the quick brown ", "stop")
    reply = create(gw, n=3, stop="lazy")
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert {c.message.content for c in reply.choices} == {"the quick brown fox jumps over the "}
    assert reply.usage.completion_tokens == 3 * 8


def test_a_required_tool_is_called_with_arguments_from_its_schema(start: Start) -> None:
    gw = start()
    reply = create(gw, tools=[WEATHER], tool_choice="required")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.function.name == "weather"
    assert call.function.arguments == '{"city":"' + TEXT + '","days":0}'
    named = create(
        gw, tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "weather"}}
    )
    assert named.choices[0].message.tool_calls[0].function.name == "weather"
    assert create(gw, tools=[WEATHER], tool_choice="auto").choices[0].message.content == TEXT


def test_streams_carry_usage_as_openai_does(start: Start) -> None:
    gw = start()
    chunks = list(
        create(gw, stream=True, stream_options={"include_usage": True}, max_tokens=3, n=2)
    )
    *content, last = chunks
    assert last.choices == [] and last.usage is not None
    assert (last.usage.completion_tokens, last.usage.prompt_tokens) == (6, 14)  # 43 chars / 4 + 4
    assert all(c.usage is None for c in content)
    assert {c.model for c in chunks} == {"echo/e1"}
    for index in (0, 1):
        mine = [c.choices[0] for c in content if c.choices[0].index == index]
        assert "".join(c.delta.content or "" for c in mine) == TEXT[:12]
        assert mine[-1].finish_reason == "length"
    calls = [
        c.choices[0].delta.tool_calls
        for c in create(gw, stream=True, tools=[WEATHER], tool_choice="required")
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].function.name == "weather"
