"""POST /v1/responses, stateless: passed through to upstreams that serve the Responses API,
translated to chat completions (and back, streams included) for the others; the official SDK
as the client, every answer and event checked against OpenAI's schemas."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import openai
import pytest
from conftest import KEYS, FakeUpstream, Gateway

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
# fake/native's upstream serves /responses (the `responses` capability)
NATIVE_MODEL = "  fake/native: {context_window: 100000, capabilities: [tools, responses]}\n"
NATIVE_CONNECTION = (
    "  - {id: platform-native, owner: platform, provider: fake, models: [fake/native],"
    " credentials: {api_key_env: PLATFORM_KEY}}\n"
)
MIXED = (
    "  mixed:\n    scope: system\n    strategy: priority\n"
    "    members: [{model: echo/e1, priority: 1}, {model: fake/native}]\n"
)
WEATHER: Any = {
    "type": "function",
    "name": "weather",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS["carol"], max_retries=0, timeout=10)


def started(start: Start) -> Gateway:
    return start(models=NATIVE_MODEL, connections=NATIVE_CONNECTION, collections=MIXED)


def test_translated_for_a_chat_upstream(start: Start) -> None:
    gw = started(start)
    raw = client(gw).responses.with_raw_response.create(
        model="echo/e1", input="hello there", instructions="be brief"
    )
    reply = raw.parse()
    assert reply.output_text == "hello there" and reply.status == "completed"
    assert reply.model == "echo/e1" and reply.instructions == "be brief"
    assert reply.usage is not None and reply.usage.output_tokens == 2
    assert raw.http_response.json()["_selected_model"] == "echo/e1"
    assert raw.headers["x-routectl-selected-model"] == "echo/e1"
    cut = client(gw).responses.create(model="echo/e1", input="hello there", max_output_tokens=1)
    assert cut.status == "incomplete" and cut.incomplete_details is not None
    assert cut.incomplete_details.reason == "max_output_tokens" and cut.output_text == "hell"


def test_tools_and_history_translate_both_ways(start: Start, fake: FakeUpstream) -> None:
    gw = started(start)
    reply = client(gw).responses.create(
        model="echo/e1", input="Oslo", tools=[WEATHER], tool_choice="required"
    )
    [call] = reply.output
    assert call.type == "function_call" and call.name == "weather"
    assert json.loads(call.arguments) == {"city": "Oslo"}
    # the function's output goes back with the history, as a stateless client sends it
    client(gw).responses.create(
        model="fake/m1",
        input=[
            {"role": "user", "content": "weather in Oslo?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": "weather",
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
        tools=[WEATHER],
        text={"format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}}},
    )
    sent = fake.calls[-1]["body"]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool"]
    assert sent["messages"][1]["tool_calls"][0]["function"]["name"] == "weather"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny"}
    assert sent["tools"][0]["function"]["name"] == "weather"
    assert sent["response_format"]["type"] == "json_schema"


def test_streamed_events_from_a_translated_stream(start: Start) -> None:
    gw = started(start)
    events = list(client(gw).responses.create(model="echo/e1", input="one two three", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "one two three" and final.usage is not None
    calls = list(
        client(gw).responses.create(
            model="echo/e1", input="Oslo", tools=[WEATHER], tool_choice="required", stream=True
        )
    )
    done = [e for e in calls if e.type == "response.function_call_arguments.done"]
    assert len(done) == 1 and json.loads(done[0].arguments) == {"city": "Oslo"}


def test_passed_through_to_an_upstream_that_serves_responses(
    start: Start, fake: FakeUpstream
) -> None:
    gw = started(start)
    reply = client(gw).responses.create(model="fake/native", input="hi", store=False)
    assert reply.output_text == "native" and reply.model == "fake/native"
    assert fake.calls[-1]["action"] == "responses" and fake.calls[-1]["model"] == "native"
    assert fake.calls[-1]["body"]["input"] == "hi"  # as sent, only the model rewritten
    events = list(client(gw).responses.create(model="fake/native", input="hi", stream=True))
    assert [e.type for e in events] == ["response.created", "response.completed"]
    assert {e.response.model for e in events} == {"fake/native"}  # type: ignore[union-attr]


def test_built_in_tools_go_only_where_the_responses_api_is_served(
    start: Start, fake: FakeUpstream
) -> None:
    gw = started(start)
    search: Any = [{"type": "web_search"}]
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).responses.create(model="echo/e1", input="news?", tools=search)
    assert "the built-in tool 'web_search'" in info.value.message
    # in a collection, the member whose upstream serves /responses takes it
    reply = client(gw).responses.create(model="collection/mixed", input="news?", tools=search)
    assert reply.model == "fake/native"


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"previous_response_id": "resp_1"}, "previous_response_id"), ({"store": True}, "store")],
)
def test_stored_state_is_refused_with_a_clear_400(
    start: Start, extra: dict[str, Any], param: str
) -> None:
    gw = started(start)
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).responses.create(model="echo/e1", input="hi", **extra)
    err = info.value
    assert (err.code, err.type, err.param) == ("invalid_request", "invalid_request_error", param)
    assert "routectl keeps no conversation state" in err.message
