"""The front (runtime/front.py): routectl's own dispatch on aiohttp's low-level server answers
exactly as web.Application's router did, and a runtime app is never served without its envelope."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable

import pytest
from aiohttp import web
from conftest import ENV, KEYS, Gateway, LoopThread, make_table

from routectl.runtime.app import create_app

pytestmark = pytest.mark.e2e

Start = Callable[..., Gateway]
CHAT = json.dumps({"model": "fake/m1", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def test_unknown_paths_and_methods_answer_in_openai_error_shape(start: Start) -> None:
    gw = start()
    status, headers, data = _call(gw.port, "GET", "/v1/nothing-here")
    assert status == 404 and json.loads(data)["error"]["code"] == "not_found"
    assert headers["x-request-id"] and headers["x-routectl-table"] == gw.table.sha256
    status, headers, data = _call(gw.port, "GET", "/v1/chat/completions")
    assert status == 405 and json.loads(data)["error"]["code"] == "method_not_allowed"
    assert headers["allow"] == "POST"  # RFC 9110: a 405 names what is allowed
    # a path the router decodes differently from the raw one is still the router's answer
    status, _, data = _call(gw.port, "POST", "/v1/chat%2Fcompletions", CHAT)
    assert status == 404 and json.loads(data)["error"]["code"] == "not_found"


def test_routes_answer_by_method_path_and_parameter(start: Start) -> None:
    gw = start()
    auth = {"Authorization": f"Bearer {KEYS['alice']}"}
    status, headers, data = _call(
        gw.port,
        "POST",
        "/v1/chat/completions",
        CHAT,
        {**auth, "Content-Type": "application/json"},
    )
    assert status == 200 and json.loads(data)["model"] == "fake/m1"
    assert headers["x-routectl-selected-model"] == "fake/m1"
    # a query string does not change the route
    status, _, _ = _call(gw.port, "GET", "/healthz?probe=1")
    assert status == 200
    # GET routes answer HEAD, without a body
    status, headers, data = _call(gw.port, "HEAD", "/healthz")
    assert status == 200 and data == b"" and headers["x-request-id"]
    # a parameterised route, through the router
    status, _, data = _call(gw.port, "GET", "/v1/models/fake/m1", headers=auth)
    assert status == 200 and json.loads(data)["id"] == "fake/m1"
    # the Anthropic routes answer their errors in Anthropic's shape
    status, headers, data = _call(gw.port, "POST", "/v1/messages", b"{}")
    assert status == 401 and json.loads(data)["type"] == "error"
    assert headers["request-id"] == headers["x-request-id"]


def test_expect_100_continue_is_answered_before_the_body(start: Start) -> None:
    gw = start()
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        head = (
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {KEYS['alice']}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(CHAT)}\r\nExpect: 100-continue\r\n\r\n"
        )
        sock.sendall(head.encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(CHAT)
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")


def test_a_runtime_app_served_without_its_front_fails_loudly(loop_thread: LoopThread) -> None:
    # aiohttp's own dispatch would skip the envelope: no request id, error shape, limits or log
    app = create_app(make_table(), environ=ENV)

    async def serve() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = loop_thread.run(serve())
    try:
        status, headers, _ = _call(port, "GET", "/healthz")
        assert status == 500 and "x-request-id" not in headers
    finally:
        loop_thread.stop(runner)
