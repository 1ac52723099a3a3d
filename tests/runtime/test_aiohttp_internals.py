"""The runtime reads a few attributes behind aiohttp's public request and response properties
(a property is a Python-level call per read on the hot path: front.py, envelope.py, answer.py,
connections.py, handlers.py). This test holds the installed aiohttp to what those reads assume:
each attribute is there and means what its public property returns, on a real server and a real
request. An aiohttp release that renames one fails here, not in production."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientSession, HttpVersion10, HttpVersion11, web


async def _observe(method: str, headers: dict[str, str], version_10: bool) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.StreamResponse:
        seen["method"] = (request._method, request.method)
        seen["path"] = (request._rel_url.path, request.path)
        seen["path_safe"] = (request._rel_url.path_safe, request.rel_url.path_safe)
        seen["headers"] = (request._headers, request.headers)
        seen["version"] = (request._version, request.version)
        seen["keep_alive"] = (not request._message.should_close, request.keep_alive)
        protocol = request._protocol
        seen["transport"] = (protocol.transport if protocol else None, request.transport)
        seen["payload"] = (request._payload, request.content)
        seen["writer"] = (request._payload_writer is not None, True)
        resp = web.Response(status=201, text="ok")
        seen["status"] = (resp._status, resp.status)
        seen["signals"] = (request.app._on_response_prepare, request.app.on_response_prepare)
        seen["response_headers"] = (resp._headers, resp.headers)
        return resp

    app = web.Application()
    app.router.add_route("*", "/probe/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with ClientSession(version=HttpVersion10 if version_10 else HttpVersion11) as session:
            url = f"http://127.0.0.1:{port}/probe/a%20b?x=1"
            async with session.request(method, url, headers=headers, data=b"{}") as resp:
                assert resp.status == 201
    finally:
        await runner.cleanup()
    return seen


def test_the_attributes_read_behind_aiohttps_properties_mean_what_the_properties_return() -> None:
    cases = [
        ("POST", {"X-Request-Id": "r1", "Content-Type": "application/json"}, False),
        ("POST", {"Connection": "close"}, False),
        ("GET", {}, False),
        ("PUT", {}, True),
    ]
    for method, headers, version_10 in cases:
        seen = asyncio.run(_observe(method, headers, version_10))
        for name, (private, public) in seen.items():
            if name in ("headers", "payload", "signals", "response_headers", "transport"):
                assert private is public, (name, method)
            else:
                assert private == public, (name, method, private, public)
        assert seen["method"][0] == method
        assert seen["headers"][0].get("X-Request-Id") == headers.get("X-Request-Id")
