"""The client matrix: the clients people point at an OpenAI-compatible gateway, against every
endpoint they use (docs/runtime.md has the table). The official openai SDK, sync and async, and
LangChain's ChatOpenAI; every answer checked against OpenAI's schemas by the gateway fixture."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import openai
import pytest
from conftest import KEYS, Gateway
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from openai.types.chat import ChatCompletionMessageParam

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
EMBEDDINGS = (
    "  echo/emb: {kind: embedding}\n",
    "  - {id: platform-echo-emb, owner: platform, provider: echo, models: [echo/emb]}\n",
)


def started(start: Start) -> Gateway:
    return start(models=EMBEDDINGS[0], connections=EMBEDDINGS[1])


def test_openai_sdk_sync(start: Start) -> None:
    gw = started(start)
    c = openai.OpenAI(base_url=gw.base_url, api_key=KEYS["carol"], max_retries=0, timeout=10)
    assert c.chat.completions.create(model="echo/e1", messages=HI).choices[0].message.content == (
        "hi there"
    )
    streamed = c.chat.completions.create(model="auto(free)", messages=HI, stream=True)
    assert "".join(k.choices[0].delta.content or "" for k in streamed if k.choices) == "hi there"
    raw = c.chat.completions.with_raw_response.create(model="collection/auto-free", messages=HI)
    assert raw.headers["x-routectl-selected-model"] in ("echo/e1", "echo/e2")
    assert raw.parse().model == raw.headers["x-routectl-selected-model"]
    assert c.models.retrieve("echo/e1").id == "echo/e1"
    assert len(c.embeddings.create(model="echo/emb", input="x").data[0].embedding) == 16
    assert c.responses.create(model="echo/e1", input="hi there").output_text == "hi there"
    events = [e.type for e in c.responses.create(model="echo/e1", input="hi", stream=True)]
    assert events[0] == "response.created" and events[-1] == "response.completed"


def test_openai_sdk_async(start: Start) -> None:
    gw = started(start)

    async def session() -> list[Any]:
        async with openai.AsyncOpenAI(
            base_url=gw.base_url, api_key=KEYS["carol"], max_retries=0, timeout=10
        ) as c:
            reply = await c.chat.completions.create(model="echo/e1", messages=HI)
            chunks = [
                k
                async for k in await c.chat.completions.create(
                    model="echo/e1", messages=HI, stream=True
                )
            ]
            model = await c.models.retrieve("collection/auto-free")
            vectors = await c.embeddings.create(model="echo/emb", input=["a", "b"])
            response = await c.responses.create(model="echo/e1", input="hi there")
            events = [
                e async for e in await c.responses.create(model="echo/e1", input="hi", stream=True)
            ]
            return [reply, chunks, model, vectors, response, events]

    reply, chunks, model, vectors, response, events = asyncio.run(session())
    assert reply.choices[0].message.content == "hi there"
    assert "".join(k.choices[0].delta.content or "" for k in chunks if k.choices) == "hi there"
    assert model.id == "collection/auto-free" and len(vectors.data) == 2
    assert response.output_text == "hi there" and events[-1].type == "response.completed"


def chat_model(gw: Gateway, model: str = "echo/e1", **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=model,
        base_url=gw.base_url,
        api_key=KEYS["bob"],  # type: ignore[arg-type]
        max_retries=0,
        timeout=10,
        **kwargs,
    )


@tool
def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_langchain_chat_openai(start: Start) -> None:
    gw = started(start)
    assert chat_model(gw).invoke("hello world").content == "hello world"
    chunks = list(chat_model(gw, stream_usage=True).stream("one two"))
    assert "".join(str(c.content) for c in chunks) == "one two"
    total = chunks[0]
    for c in chunks[1:]:
        total = total + c
    assert isinstance(total, AIMessageChunk) and total.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == 1
    bound = chat_model(gw).bind_tools([weather], tool_choice="required")
    [call] = bound.invoke("Oslo").tool_calls
    assert call["name"] == "weather" and call["args"] == {"city": "Oslo"}


def test_langchain_context_overflow_raises_its_error(start: Start) -> None:
    gw = started(start)
    # fake/tiny (bob, through acme) has a 50-token window: the prompt fits no candidate
    with pytest.raises(ContextOverflowError):
        chat_model(gw, "fake/tiny").invoke("x" * 400)
