"""POST /v1/embeddings, routed like chat (collections, priorities, fallback, headers) to models
of kind `embedding`; echo's vectors; the official SDK as the client."""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable

import openai
import pytest
from conftest import KEYS, FakeUpstream, Gateway

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
MODELS = (
    "  fake/emb: {kind: embedding, context_window: 8191, pricing: {input_per_mtok: 0.02}}\n"
    "  echo/emb: {kind: embedding}\n"
)
CONNECTIONS = (
    "  - {id: platform-fake-emb, owner: platform, provider: fake, models: [fake/emb],"
    " credentials: {api_key_env: PLATFORM_KEY}}\n"
    "  - {id: platform-echo-emb, owner: platform, provider: echo, models: [echo/emb]}\n"
)
VECTORS = (
    "  vectors:\n    scope: system\n    strategy: priority\n"
    "    members: [{model: fake/emb, priority: 1}, {model: echo/emb}]\n"
)


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS["carol"], max_retries=0, timeout=10)


def started(start: Start) -> Gateway:
    return start(models=MODELS, connections=CONNECTIONS, collections=VECTORS)


def test_a_collection_of_embedding_models_with_fallback(start: Start, fake: FakeUpstream) -> None:
    gw = started(start)
    raw = client(gw).embeddings.with_raw_response.create(
        model="collection/vectors", input=["a", "b"], encoding_format="float"
    )
    reply = raw.parse()
    assert raw.headers["x-routectl-selected-model"] == "fake/emb"
    assert raw.headers["x-routectl-connection"] == "platform-fake-emb"
    assert reply.model == "fake/emb" and [d.index for d in reply.data] == [0, 1]
    assert fake.calls[-1]["model"] == "emb" and fake.calls[-1]["key"] == "sk-platform"
    body = raw.http_response.json()
    assert body["_collection_name"] == "vectors" and body["_selected_model"] == "fake/emb"
    # the upstream rate limited: echo's embeddings answer, as a fallback
    fake.script["emb"] = ["429"]
    raw = client(gw).embeddings.with_raw_response.create(model="collection/vectors", input="a")
    body = raw.http_response.json()
    assert raw.headers["x-routectl-selected-model"] == "echo/emb"
    assert body["_fallback_used"] is True and body["_fallback_reason"] == "rate_limited"


def test_echo_vectors_are_deterministic_unit_vectors(start: Start) -> None:
    gw = started(start)
    # the SDK asks for base64 by default and decodes it
    first = client(gw).embeddings.create(model="echo/emb", input="hello")
    again = client(gw).embeddings.create(model="echo/emb", input="hello", encoding_format="float")
    other = client(gw).embeddings.create(model="echo/emb", input="bye", encoding_format="float")
    vector = first.data[0].embedding
    assert len(vector) == 16
    assert vector == pytest.approx(again.data[0].embedding, abs=1e-6)  # float32 over base64
    assert other.data[0].embedding != again.data[0].embedding
    assert sum(v * v for v in again.data[0].embedding) == pytest.approx(1.0)
    sized = client(gw).embeddings.create(
        model="echo/emb", input=[[1, 2, 3], [4]], dimensions=4, encoding_format="base64"
    )
    raw = sized.data[1].embedding
    decoded = struct.unpack("<4f", base64.b64decode(raw)) if isinstance(raw, str) else raw
    assert len(decoded) == 4 and len(sized.data) == 2
    assert sized.usage.prompt_tokens == 4  # token arrays count their tokens


def test_a_model_of_the_other_kind_is_a_400(start: Start) -> None:
    gw = started(start)
    with pytest.raises(openai.BadRequestError) as info:
        client(gw).embeddings.create(model="fake/m1", input="x")
    err = info.value
    assert (err.code, err.param) == ("invalid_request", "model")
    assert "serves chat models" in err.message
    with pytest.raises(openai.BadRequestError) as chat:
        client(gw).chat.completions.create(
            model="collection/vectors", messages=[{"role": "user", "content": "x"}]
        )
    assert "serves embedding models" in chat.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client(gw).embeddings.create(model="echo/emb", input=[])
    assert bad.value.param == "input"
