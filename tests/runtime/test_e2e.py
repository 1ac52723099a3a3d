"""End to end: create_app on a real port, fake upstreams on real sockets, the official openai SDK."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import openai
import pytest
from conftest import KEYS, SMALL_CONNECTION, SMALL_MODEL, FakeUpstream, Gateway
from openai.types.chat import ChatCompletionMessageParam

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def client(gw: Gateway, who: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=KEYS[who], max_retries=0, timeout=10)


def aclient(gw: Gateway, who: str = "alice") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.base_url, api_key=KEYS[who], max_retries=0, timeout=10)


def chat(gw: Gateway, model: str, who: str = "alice", **extra: Any) -> tuple[dict[str, Any], Any]:
    """One non-streaming request: (body as dict, raw headers)."""
    raw = client(gw, who).chat.completions.with_raw_response.create(
        model=model, messages=HELLO, extra_body=extra or None
    )
    return json.loads(raw.http_response.content), raw.headers


def error_of(exc: openai.APIStatusError) -> dict[str, Any]:
    body = exc.response.json()
    assert exc.response.headers["x-routectl-table"]
    assert exc.response.headers["x-request-id"]
    return body["error"]  # type: ignore[no-any-return]


def call(
    gw: Gateway, method: str, path: str, body: bytes | None = None, who: str | None = "alice"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if who:
        headers["Authorization"] = f"Bearer {KEYS[who]}"
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def coll(name: str, strategy: str, members: str, scope: str = "system", extra: str = "") -> str:
    return (
        f"  {name}:\n    scope: {scope}\n    strategy: {strategy}\n    members: {members}\n{extra}"
    )


# ---------------------------------------------------------------- priority and access


def test_private_then_org_then_platform_with_fallback_down_the_list(
    start: Start, fake: FakeUpstream
) -> None:
    gw = start()
    body, headers = chat(gw, "fake/m1", "alice")
    assert headers["x-routectl-connection"] == "alice-fake"
    assert body["model"] == "fake/m1" and body["_selected_model"] == "fake/m1"
    assert fake.calls[-1]["key"] == "sk-alice" and fake.calls[-1]["model"] == "m1"
    assert chat(gw, "fake/m1", "bob")[1]["x-routectl-connection"] == "acme-fake"
    assert chat(gw, "fake/m1", "carol")[1]["x-routectl-connection"] == "platform-fake"
    # the private connection fails, the organization's answers; then the org's is rate limited too
    fake.script["sk-alice/m1"] = ["500"]
    fake.script["sk-acme/m1"] = ["429:5"]
    body, headers = chat(gw, "fake/m1", "alice")
    assert headers["x-routectl-connection"] == "platform-fake"
    assert body["_fallback_used"] is True
    # why the first choice was dropped (its 500), not the last failure (the org key's 429)
    assert body["_fallback_reason"] == "upstream_500"
    assert body["_original_selection"] == "fake/m1"
    assert [c["key"] for c in fake.calls[-3:]] == ["sk-alice", "sk-acme", "sk-platform"]


def test_handle_access_allowed_and_denied(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    assert chat(gw, "acme/fake/m2", "bob")[1]["x-routectl-connection"] == "acme-fake"
    assert chat(gw, "alice/fake/m1", "alice")[1]["x-routectl-connection"] == "alice-fake"
    for who, model, scope in (
        ("carol", "acme/fake/m2", "organization"),
        ("bob", "alice/fake/m1", "user"),
    ):
        with pytest.raises(openai.PermissionDeniedError) as info:
            chat(gw, model, who)
        err = error_of(info.value)
        assert err["code"] == "access_denied"
        assert err["required_scope"] == scope
        assert err["user_scope"] == ("individual" if who == "carol" else "organization")
    with pytest.raises(openai.NotFoundError) as nf:
        chat(gw, "nobody/fake/m1")
    assert error_of(nf.value)["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError) as nf:
        chat(gw, "acme/fake/m9")
    assert error_of(nf.value)["code"] == "model_not_found"


def test_auto_free_aliases_and_collection_scopes(start: Start) -> None:
    gw = start(
        collections=coll(
            "team", "priority", "[{model: fake/m2}]", "organization", "    owner: acme\n"
        )
        + coll("mine", "priority", "[{model: alice/fake/m1}]", "user", "    owner: alice\n")
    )
    for name in ("auto(free)", "auto-free", "collection/auto-free"):
        body, headers = chat(gw, name, "carol")
        assert body["_collection_routed"] is True
        assert body["_collection_name"] == "auto-free"
        assert body["_routing_strategy"] == "random"
        assert body["model"] in ("echo/e1", "echo/e2")
        assert headers["x-routectl-connection"] == "platform-echo"
        assert body["choices"][0]["message"]["content"] == "hello"
    assert chat(gw, "collection/team", "bob")[0]["_collection_name"] == "team"
    with pytest.raises(openai.PermissionDeniedError) as denied:
        chat(gw, "collection/team", "carol")
    assert error_of(denied.value)["required_scope"] == "organization"
    assert chat(gw, "collection/mine", "alice")[0]["_selected_model"] == "fake/m1"
    with pytest.raises(openai.NotFoundError) as hidden:
        chat(gw, "collection/mine", "bob")
    missing = error_of(hidden.value)
    assert missing["code"] == "collection_not_found"
    assert missing["message"] == "Collection 'mine' not found or access denied"  # as in the seed
    with pytest.raises(openai.NotFoundError) as absent:
        chat(gw, "collection/nope", "bob")
    # another user's collection answers exactly like a missing one
    assert error_of(absent.value)["message"].replace("nope", "mine") == missing["message"]


def test_invalid_key_is_401(start: Start) -> None:
    gw = start()
    bad = openai.OpenAI(base_url=gw.base_url, api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.chat.completions.create(model="auto(free)", messages=HELLO)
    assert error_of(info.value)["code"] == "invalid_api_key"
    status, headers, _ = call(gw, "POST", "/v1/chat/completions", b"{}", who=None)
    assert status == 401 and headers["x-request-id"]


# ---------------------------------------------------------------- health: 429, failures, cooldowns


def test_429_cools_down_then_recovers(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-platform/m2"] = ["429:10"]
    with pytest.raises(openai.APIStatusError) as failed:
        chat(gw, "fake/m2", "carol")
    err = error_of(failed.value)
    # every attempt rate limited: a 429 the SDK waits out, not a 502
    assert failed.value.status_code == 429 and err["code"] == "rate_limited"
    assert err["attempts"] == [{"model": "fake/m2", "connection": "platform-fake", "status": 429}]
    headers = failed.value.response.headers
    assert (headers["retry-after"], headers["x-should-retry"]) == ("10", "true")
    calls = len(fake.calls)
    gw.clock.t += 2.5
    with pytest.raises(openai.APIStatusError) as cooling:
        chat(gw, "fake/m2", "carol")
    err = error_of(cooling.value)
    assert cooling.value.status_code == 503 and err["code"] == "model_unavailable"
    assert err["details"]["reasons"] == ["platform-fake: rate limited until 2027-01-15T08:00:10Z"]
    headers = cooling.value.response.headers
    assert (headers["retry-after"], headers["x-should-retry"]) == ("8", "true")  # 7.5 s left
    assert len(fake.calls) == calls  # nothing was sent while cooling down
    # the same connection keeps serving its other models
    assert chat(gw, "fake/m1", "carol")[1]["x-routectl-connection"] == "platform-fake"
    gw.clock.t += 10.5
    assert chat(gw, "fake/m2", "carol")[0]["model"] == "fake/m2"


def test_allowed_fails_then_cooldown(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-platform/m3"] = ["500", "500", "500"]
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as failed:
            chat(gw, "fake/m3", "carol")
        assert failed.value.status_code == 502
    with pytest.raises(openai.APIStatusError) as cooling:
        chat(gw, "fake/m3", "carol")
    reasons = error_of(cooling.value)["details"]["reasons"]
    assert (
        "platform-fake: cooling down after repeated failures until 2027-01-15T08:00:30Z" in reasons
    )
    gw.clock.t += 31
    assert chat(gw, "fake/m3", "carol")[0]["model"] == "fake/m3"


def test_other_upstream_errors_go_back_as_they_came(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-alice/m1"] = ["400"]
    with pytest.raises(openai.BadRequestError) as info:
        chat(gw, "fake/m1", "alice")
    assert info.value.response.json() == {
        "error": {"message": "fake 400", "type": "fake", "param": None, "code": None}
    }
    assert info.value.response.headers["x-routectl-connection"] == "alice-fake"
    assert len([c for c in fake.calls if c["model"] == "m1"]) == 1  # no fallback on a 400


def test_hang_times_out_and_falls_back(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-alice/m1"] = ["hang"]
    started = time.monotonic()
    body, headers = chat(gw, "fake/m1", "alice", timeout={"call_timeout": 300})
    assert time.monotonic() - started < 5
    assert headers["x-routectl-connection"] == "acme-fake"
    assert body["_fallback_reason"] == "timeout"
    assert "timeout" not in fake.calls[-1]["body"]  # routectl's own keys never go upstream


def test_collection_no_models_lists_reasons(start: Start) -> None:
    members = (
        "[{model: fake/m1, active: false}, {model: acme/fake/m1}, {model: fake/small},"
        " {model: fake/m3}]"
    )
    gw = start(
        collections=coll("broken", "round_robin", members),
        models=SMALL_MODEL,
        connections=SMALL_CONNECTION,
    )
    gw.runtime.state.record_rate_limit("platform-fake", "fake/m3", 20, gw.clock())
    with pytest.raises(openai.APIStatusError) as info:
        client(gw, "carol").chat.completions.create(
            model="collection/broken", messages=[{"role": "user", "content": "x" * 400}]
        )
    assert info.value.status_code == 503
    err = error_of(info.value)
    assert err["code"] == "collection_no_models"
    assert err["details"] == {
        "total_members": 4,
        "available_models": 0,
        "reasons": [
            "fake/m1: inactive",
            "acme/fake/m1: no connection you may use (acme)",
            "fake/small: context window 50 too small for ~104 tokens",
            "fake/m3: credentials not set (UNSET_KEY_FOR_TESTS); rate limited until"
            " 2027-01-15T08:00:20Z",
        ],
    }
    # fake/m3 serves again once its cooldown ends: worth a retry then
    headers = info.value.response.headers
    assert (headers["retry-after"], headers["x-should-retry"]) == ("20", "true")


# ---------------------------------------------------------------- strategies over HTTP


def test_strategies_sequences_over_http(start: Start, fake: FakeUpstream) -> None:
    three = "[{model: fake/m1}, {model: fake/m2}, {model: fake/m3}]"
    gw = start(
        collections=coll("rr", "round_robin", three)
        + coll("lu", "least_used", "[{model: echo/e1}, {model: echo/e2}]")
        + coll("lu3", "least_used", three)
        + coll("wt", "weighted", "[{model: fake/m1, weight: 0.7}, {model: fake/m2, weight: 0.3}]")
        + coll("cheap", "cost_optimized", three)
        + coll("fast", "latency_optimized", three)
        + coll("chain", "fallback", "[{model: fake/m1, priority: 2}, {model: fake/m2}]")
    )

    def pick(name: str) -> dict[str, Any]:
        return chat(gw, name, "carol")[0]

    # nothing measured yet: each unmeasured member is tried first, in member order
    assert [pick("collection/fast")["model"] for _ in range(3)] == ["fake/m1", "fake/m2", "fake/m3"]
    assert [pick("collection/rr")["model"] for _ in range(4)] == [
        "fake/m1",
        "fake/m2",
        "fake/m3",
        "fake/m1",
    ]
    lu = [pick("collection/lu") for _ in range(4)]
    assert [b["model"] for b in lu] == ["echo/e1", "echo/e2", "echo/e1", "echo/e2"]
    assert lu[2]["_usage_at_selection"] == 1
    assert lu[2]["_model_alternatives"] == [{"model": "echo/e2", "usage": 1}]
    assert lu[2]["_routing_strategy"] == "least_used"
    # after a fallback the least_used fields describe the member that answered
    assert [pick("collection/lu3")["model"] for _ in range(2)] == ["fake/m2", "fake/m1"]
    fake.script["m3"] = ["500"]  # m3, used least, is chosen and fails; m2 comes next
    body = pick("collection/lu3")
    assert (body["model"], body["_original_selection"]) == ("fake/m2", "fake/m3")
    assert body["_usage_at_selection"] == 1
    assert body["_model_alternatives"] == [
        {"model": "fake/m3", "usage": 0},
        {"model": "fake/m1", "usage": 1},
    ]
    assert Counter(pick("collection/wt")["model"] for _ in range(10)) == {
        "fake/m1": 7,
        "fake/m2": 3,
    }
    assert pick("collection/cheap")["model"] == "fake/m3"
    chain = pick("collection/chain")
    assert chain["model"] == "fake/m1" and chain["_routing_strategy"] == "fallback"


def test_request_level_load_balancer(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    lb = {
        "type": "weight_based",
        "models": [{"model": "fake/m1", "weight": 0.7}, {"model": "fake/m2", "weight": 0.3}],
    }
    models = Counter(chat(gw, "ignored", "carol", load_balancer=lb)[0]["model"] for _ in range(20))
    assert models == {"fake/m1": 14, "fake/m2": 6}
    assert all("load_balancer" not in c["body"] for c in fake.calls)
    default = {"type": "weight_based", "models": [{"model": "fake/m1"}, {"model": "fake/m2"}]}
    assert Counter(chat(gw, "x", "carol", load_balancer=default)[0]["model"] for _ in range(4)) == {
        "fake/m1": 2,
        "fake/m2": 2,
    }
    for bad in (
        {"type": "random", "models": [{"model": "fake/m1"}]},
        {"type": "weight_based", "models": []},
        {"type": "weight_based", "models": [{"model": "fake/m1", "weight": 2}]},
        {"type": "weight_based", "models": [{"model": "fake/m1", "weight": 0.0001}]},
    ):
        with pytest.raises(openai.BadRequestError) as info:
            chat(gw, "x", "carol", load_balancer=bad)
        assert error_of(info.value)["code"] == "invalid_request"
    with pytest.raises(openai.BadRequestError):
        chat(gw, "fake/m1", "carol", retry={"count": "two"})
    with pytest.raises(openai.BadRequestError):
        chat(gw, "fake/m1", "carol", timeout={"call_timeout": -1})


def test_retry_overrides_attempts_and_codes(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-alice/m1"] = ["500"]
    # on_codes without 500: the 500 is final and goes back as it came
    with pytest.raises(openai.InternalServerError):
        chat(gw, "fake/m1", "alice", retry={"count": 2, "on_codes": [429]})
    fake.script["sk-alice/m1"] = ["429"]
    with pytest.raises(openai.APIStatusError) as info:
        chat(gw, "fake/m1", "alice", retry={"count": 0, "on_codes": [429]})
    assert len(error_of(info.value)["attempts"]) == 1


# ---------------------------------------------------------------- streaming


def routed(chunks: bytes, model: str = "fake/m1") -> bytes:
    """The fake upstream's chunks as the client gets them: with the routed model id."""
    return chunks.replace(b'"model":"up"', b'"model":"' + model.encode() + b'"')


def raw_stream(gw: Gateway, model: str, who: str = "alice") -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"model": model, "messages": HELLO, "stream": True}).encode()
    return call(gw, "POST", "/v1/chat/completions", body, who)


def test_streaming_passthrough_is_byte_for_byte_but_the_model(
    start: Start, fake: FakeUpstream
) -> None:
    gw = start()
    fake.script["m1"] = ["slow"]
    status, headers, data = raw_stream(gw, "fake/m1")
    assert status == 200
    # every chunk names the routed model, as the non-streamed answer does; not the upstream's
    upstream = b"".join(fake.stream_chunks)
    assert upstream.count(b'"model":"up"') == 4
    assert data == routed(upstream)
    assert headers["x-routectl-selected-model"] == "fake/m1"
    assert headers["x-routectl-connection"] == "alice-fake"
    assert headers["x-routectl-table"] == gw.table.sha256
    assert headers["content-type"].startswith("text/event-stream")


def test_streaming_with_the_sdk_sync(start: Start) -> None:
    gw = start()
    with client(gw).chat.completions.with_streaming_response.create(
        model="fake/m1", messages=HELLO, stream=True
    ) as resp:
        assert resp.headers["x-routectl-connection"] == "alice-fake"
        text = "".join(c.choices[0].delta.content or "" for c in resp.parse() if c.choices)
    assert text == "Hello é"


async def test_streaming_with_the_sdk_async(start: Start) -> None:
    gw = start()
    # closed here, on this loop: a client collected later would schedule its close on another
    async with aclient(gw, "carol") as client:
        stream = await client.chat.completions.create(
            model="auto(free)",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        parts: list[str] = []
        usage = None
        async for chunk in stream:
            if chunk.choices:
                parts.append(chunk.choices[0].delta.content or "")
            if chunk.usage:
                usage = chunk.usage
    assert "".join(parts) == "one two three"
    assert usage is not None and usage.completion_tokens > 0


async def test_async_sdk_non_streaming(start: Start) -> None:
    gw = start()
    async with aclient(gw, "bob") as client:
        resp = await client.chat.completions.create(model="fake/m2", messages=HELLO)
    assert resp.model == "fake/m2"
    assert resp.choices[0].message.content == "fake:m2:hello"


def test_stream_falls_back_before_the_first_byte(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-alice/m1"] = ["500"]
    status, headers, data = raw_stream(gw, "fake/m1")
    assert status == 200 and headers["x-routectl-connection"] == "acme-fake"
    assert data == routed(b"".join(fake.stream_chunks))


def test_drop_mid_stream_ends_with_an_error_event(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-alice/m1"] = ["drop"]
    status, _, data = raw_stream(gw, "fake/m1")
    assert status == 200
    assert data.startswith(routed(b"".join(fake.stream_chunks[:2])))
    assert b'"code":"upstream_error"' in data
    assert [c["key"] for c in fake.calls] == ["sk-alice"]  # no fallback after the first byte
    with pytest.raises(openai.APIError):
        fake.script["sk-alice/m1"] = ["drop"]
        for _ in client(gw).chat.completions.create(model="fake/m1", messages=HELLO, stream=True):
            pass


def test_client_disconnect_cancels_the_upstream_request(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["m1"] = ["stall"]
    sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
    body = json.dumps({"model": "fake/m1", "messages": HELLO, "stream": True}).encode()
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEYS['alice']}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    assert b"200 OK" in sock.recv(65536)
    sock.close()
    deadline = time.monotonic() + 5
    while not fake.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert fake.cancelled == ["m1"]


def test_clients_leaving_mid_stream_are_499s_not_tracebacks(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = start()
    body = json.dumps({"model": "echo/e1", "messages": HELLO, "stream": True}).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {KEYS['alice']}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    with caplog.at_level(logging.INFO):
        for _ in range(20):  # gone before the answer, at various points of writing it
            sock = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
            sock.sendall(request)
            sock.close()
        deadline = time.monotonic() + 5
        while len(_access_lines(caplog)) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)  # aiohttp would log a traceback just after a handler's end
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert {line["status"] for line in _access_lines(caplog)} <= {200, 499}
    assert call(gw, "GET", "/healthz")[0] == 200


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "routectl.access" and '"/v1/chat/completions"' in r.getMessage()
    ]


def test_malformed_input_gets_the_error_shape_and_the_server_keeps_serving(start: Start) -> None:
    gw = start()
    # a text part that is not a string: the echo provider skips it (no 500)
    odd = {"role": "user", "content": [{"type": "text", "text": 5}, {"type": "text", "text": "ok"}]}
    body = json.dumps({"model": "echo/e1", "messages": [odd]}).encode()
    status, _, data = call(gw, "POST", "/v1/chat/completions", body)
    assert status == 200 and json.loads(data)["choices"][0]["message"]["content"] == "ok"
    # an Authorization header that is not UTF-8: just an unknown key
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.putrequest("GET", "/v1/models")
    conn.putheader("Authorization", b"Bearer \xff\xfe")
    conn.endheaders()
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())["error"]["code"]) == (401, "invalid_api_key")
    assert resp.getheader("x-request-id")
    conn.close()
    # a body that does not decode as its Content-Encoding says: 400, not 500
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=b"0123456789",
        headers={"Authorization": f"Bearer {KEYS['alice']}", "Content-Encoding": "deflate"},
    )
    resp = conn.getresponse()
    assert (resp.status, json.loads(resp.read())["error"]["code"]) == (400, "invalid_request")
    conn.close()
    assert call(gw, "GET", "/healthz")[0] == 200


# ---------------------------------------------------------------- the rest of the HTTP API


def test_metadata_headers_on_every_response(start: Start) -> None:
    gw = start()
    for method, path in (
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/nope"),
        ("GET", "/v1/models"),
    ):
        status, headers, _ = call(gw, method, path)
        assert status == (404 if path == "/nope" else 200)
        assert headers["x-routectl-table"] == gw.table.sha256
        assert len(headers["x-request-id"]) >= 16
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
    conn.request("GET", "/healthz", headers={"x-request-id": "trace-123"})
    assert conn.getresponse().getheader("x-request-id") == "trace-123"
    body, headers = chat(gw, "auto-free", "carol")
    assert body["_routing_table"] == gw.table.sha256
    assert headers["x-routectl-selected-model"] == body["_selected_model"]


def test_models_and_collections_api(start: Start) -> None:
    gw = start(
        collections=coll(
            "team",
            "least_used",
            "[{model: fake/m2}, {model: fake/m3}]",
            "organization",
            "    owner: acme\n",
        )
    )
    status, _, data = call(gw, "GET", "/v1/models", who="carol")
    ids = [m["id"] for m in json.loads(data)["data"]]
    assert status == 200
    assert "fake/m1" in ids and "fake/tiny" not in ids  # carol may use no connection for tiny
    assert "collection/auto-free" in ids and "auto(free)" in ids and "collection/team" not in ids
    assert "collection/team" in [m.id for m in client(gw, "bob").models.list()]
    status, _, data = call(gw, "GET", "/api/user/model-collections", who="bob")
    assert [c["name"] for c in json.loads(data)["collections"]] == ["auto-free", "team"]
    chat(gw, "collection/team", "bob")
    status, _, data = call(gw, "GET", "/api/user/model-collections/team", who="bob")
    detail = json.loads(data)
    assert status == 200 and detail["routing_strategy"] == "least_used"
    assert [(m["model"], m["usage"], m["health"]["available"]) for m in detail["models"]] == [
        ("fake/m2", 1, True),
        ("fake/m3", 0, True),
    ]
    # the seed documents' names alongside routectl's, and status codes as numbers
    assert detail["collection_name"] == "team"
    assert detail["fallback_on"] == [429, 500, 502, 503, 504, "timeout", "connect_error"]
    first = detail["models"][0]
    assert (first["provider"], first["model_name"], first["is_active"]) == ("fake", "m2", True)
    assert call(gw, "GET", "/api/user/model-collections/team", who="carol")[0] == 403
    for method in ("POST", "PUT", "DELETE"):
        status, _, data = call(gw, method, "/api/user/model-collections/team", b"{}")
        assert status == 405 and json.loads(data)["error"]["code"] == "managed_as_code"
    assert call(gw, "POST", "/api/user/model-collections", b"{}")[0] == 405


def test_body_limit_and_bad_json(start: Start) -> None:
    gw = start(max_body_bytes=2048)
    big = json.dumps(
        {"model": "auto(free)", "messages": [{"role": "user", "content": "x" * 4000}]}
    ).encode()
    status, headers, data = call(gw, "POST", "/v1/chat/completions", big)
    assert status == 413 and json.loads(data)["error"]["code"] == "request_too_large"
    assert headers["x-routectl-table"]
    for body in (
        b"{not json",
        b'{"model": "auto(free)"}',
        b'{"messages": [{"role":"user","content":"x"}]}',
    ):
        status, _, data = call(gw, "POST", "/v1/chat/completions", body)
        assert status == 400 and json.loads(data)["error"]["code"] == "invalid_request"


def test_metrics_count_requests_fallbacks_cooldowns(start: Start, fake: FakeUpstream) -> None:
    gw = start()
    fake.script["sk-alice/m1"] = ["429:3"]
    chat(gw, "fake/m1", "alice")
    status, _, data = call(gw, "GET", "/metrics")
    text = data.decode()
    assert status == 200
    assert (
        'routectl_requests_total{model="fake/m1",route="/v1/chat/completions",status="200"} 1.0'
        in text
    )
    assert 'routectl_fallbacks_total{model="fake/m1",reason="rate_limited"} 1.0' in text
    # alice's own connection is private: its series need the metrics token (issue 13)
    private = 'routectl_cooldowns_total{connection="alice-fake",model="fake/m1",reason="rate_limited"} 1.0'
    assert private not in text and "alice-fake" not in text
    # the answer came from acme's connection: its latency is private too
    assert "acme-fake" not in text
    gw.runtime.metrics_token = "scrape-token"
    assert call(gw, "GET", "/metrics")[0] == 401
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    conn.request("GET", "/metrics", headers={"Authorization": "Bearer scrape-token"})
    resp = conn.getresponse()
    assert resp.status == 200
    full = resp.read().decode()
    assert private in full
    assert 'routectl_upstream_latency_seconds_bucket{connection="acme-fake"' in full
    conn.close()


def test_access_log_is_one_json_line_without_keys(
    start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    gw = start()
    with caplog.at_level("INFO", logger="routectl.access"):
        chat(gw, "fake/m1", "alice")
    lines = [r.getMessage() for r in caplog.records if r.name == "routectl.access"]
    assert len(lines) == 1
    rec = json.loads(lines[0])
    assert rec["caller"] == "alice" and rec["requested_model"] == "fake/m1"
    assert rec["selected_model"] == "fake/m1" and rec["connection"] == "alice-fake"
    assert rec["status"] == 200 and rec["attempts"] == 1 and rec["table"] == gw.table.sha256
    assert rec["prompt_tokens"] == 10 and rec["completion_tokens"] == 20
    assert rec["cost"] == pytest.approx((10 * 3 + 20 * 6) / 1e6)
    assert "key-alice" not in lines[0] and "sk-alice" not in lines[0]
