"""The per-table caches a plain request reads inline: the route of a (caller, name, format) with
the record notes it adds (`TableIndex.routed`), and whether a candidate takes a format as sent
(`ServedTable.native`). A cached request must record, route and refuse exactly as a first one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from conftest import ENV, KEYS, Gateway, make_table

from routectl.runtime.plan import RequestFacts, plan_request
from routectl.runtime.resolve import resolve
from routectl.runtime.served import ServedTable
from routectl.runtime.state import RoutingState

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]

_MODELS = "  fake/emb: {kind: embedding, context_window: 8191, pricing: {input_per_mtok: 0.02}}\n"
_CONNECTIONS = (
    "  - {id: platform-fake-emb, owner: platform, provider: fake, models: [fake/emb],"
    " credentials: {api_key_env: PLATFORM_KEY}}\n"
)
_COLLECTIONS = """
  pair:
    scope: system
    strategy: round_robin
    members: [{model: fake/m1}, {model: fake/m2}]
"""


def _client(gw: Gateway, who: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS[who], max_retries=0, timeout=10)


def _records(gw: Gateway) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    gw.runtime.observers.append(lambda rec: seen.append(dict(rec)))
    return seen


# what differs from one request to the next (round robin picks another member, at its price)
_PER_REQUEST = {"request_id", "latency_ms", "ts", "selected_model", "connection", "cost"}


def test_a_remembered_route_records_what_a_first_request_records(start: Start) -> None:
    gw = start(collections=_COLLECTIONS)
    seen = _records(gw)
    hello: Any = [{"role": "user", "content": "hello"}]
    for model in ("fake/m1", "fake/m1", "collection/pair", "collection/pair"):
        _client(gw).chat.completions.create(model=model, messages=hello)
    _client(gw, "bob").chat.completions.create(model="fake/m1", messages=hello)
    first, again, coll, coll_again, other = seen
    # the same fields in the same order (the access-log line's bytes follow the dict's order)
    assert list(first) == list(again) and list(coll) == list(coll_again)
    for a, b in ((first, again), (coll, coll_again)):
        assert {k: v for k, v in a.items() if k not in _PER_REQUEST} == {
            k: v for k, v in b.items() if k not in _PER_REQUEST
        }
    assert coll["collection"] == "pair" and coll["resolution"] == "collection"
    # round robin still turns for a remembered route: the plan is not cached, only the route
    assert coll["selected_model"] != coll_again["selected_model"]
    assert other["caller"] == "bob"
    routed = gw.runtime.served.index.routed
    caller = gw.runtime.served.index.callers["alice"]
    assert (caller.handle, caller.owners, "fake/m1", "openai.chat") in routed
    assert (caller.handle, caller.owners, "collection/pair", "openai.chat") in routed


def test_a_route_remembered_for_chat_is_still_refused_to_embeddings(start: Start) -> None:
    gw = start(models=_MODELS, connections=_CONNECTIONS)
    hello: Any = [{"role": "user", "content": "x"}]
    _client(gw).chat.completions.create(model="fake/m1", messages=hello)
    for _ in range(2):  # a refusal is never remembered: the second is refused the same way
        with pytest.raises(openai.BadRequestError) as info:
            _client(gw).embeddings.create(model="fake/m1", input="x")
        assert "serves chat models" in info.value.message
    for _ in range(2):
        with pytest.raises(openai.BadRequestError) as chat:
            _client(gw).chat.completions.create(model="fake/emb", messages=hello)
        assert "serves embedding models" in chat.value.message
    routed = gw.runtime.served.index.routed
    assert [key[2:] for key in routed] == [("fake/m1", "openai.chat")]


def test_native_answers_are_the_dialects_own() -> None:
    served = ServedTable(make_table(), ENV)
    carol = served.index.callers["carol"]
    plan = plan_request(
        served.index,
        RoutingState(),
        carol,
        resolve(served.index, carol, "fake/m2").route,
        RequestFacts(),
    )
    for cand in plan.candidates:
        dialect = served.dialects[cand.connection_id]
        for fmt in ("openai.chat", "openai.responses", "anthropic.messages"):
            want = dialect.native_for(fmt, cand.member.info)
            assert served.native_for(cand, fmt) is want
            assert served.native[(cand.connection_id, cand.model_id, fmt)] is want
