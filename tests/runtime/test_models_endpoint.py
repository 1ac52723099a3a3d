"""GET /v1/models and /v1/models/{id}: what `client.models.list()` / `.retrieve()` read."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

import openai
import pytest
from conftest import KEYS, Gateway

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
LOADED_AT = 1_800_000_000  # the gateway fixture's clock when it loaded the table


def client(gw: Gateway, who: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS[who], max_retries=0, timeout=10)


def get(gw: Gateway, path: str, **headers: str) -> tuple[int, dict[str, object]]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {KEYS['alice']}", **headers})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    return resp.status, data


def test_retrieve_answers_each_listed_name_with_its_load_time(start: Start) -> None:
    gw = start()
    listed = client(gw).models.list()
    assert {m.created for m in listed.data} == {LOADED_AT}  # not 0: clients read a timestamp
    ids = [m.id for m in listed.data]
    assert {"fake/m1", "collection/auto-free", "auto(free)"} <= set(ids)
    for ident in ids:
        # the SDK sends the slash of `fake/m1` as %2F
        model = client(gw).models.retrieve(ident)
        assert (model.id, model.object, model.created) == (ident, "model", LOADED_AT)
    assert client(gw).models.retrieve("fake/m1").owned_by == "fake"
    assert client(gw).models.retrieve("collection/auto-free").owned_by == "routectl"


def test_a_plain_slash_works_too_and_anthropic_clients_get_their_shape(start: Start) -> None:
    gw = start()
    status, body = get(gw, "/v1/models/fake/m1")
    assert status == 200 and body["id"] == "fake/m1" and body["created"] == LOADED_AT
    status, body = get(gw, "/v1/models/fake%2Fm2")
    assert status == 200 and body["id"] == "fake/m2"
    status, body = get(gw, "/v1/models/fake/m1", **{"anthropic-version": "2023-06-01"})
    assert status == 200
    assert body["type"] == "model" and body["id"] == "fake/m1"
    assert body["max_input_tokens"] == 100000


def test_a_name_the_caller_may_not_use_is_not_found(start: Start) -> None:
    gw = start()
    for who, ident in (("carol", "fake/tiny"), ("alice", "nope/none"), ("alice", "collection/x")):
        with pytest.raises(openai.NotFoundError) as info:
            client(gw, who).models.retrieve(ident)
        err = info.value
        assert (err.code, err.type, err.param) == (
            "model_not_found",
            "invalid_request_error",
            "model",
        )
    # bob is in acme, whose connection serves fake/tiny
    assert client(gw, "bob").models.retrieve("fake/tiny").id == "fake/tiny"
