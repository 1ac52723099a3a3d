"""runtime/answer.py: `Answer` puts on the wire exactly the bytes `web.Response` does for the same
status, body and headers (Date aside), and `EventStream` those of aiohttp's StreamResponse with
its head buffered, on every path: HTTP/1.1 keep-alive and close, HTTP/1.0, HEAD, an empty body, a
204, and an app with an on_response_prepare signal."""

from __future__ import annotations

import asyncio
import re

import pytest
from aiohttp import web
from multidict import CIMultiDict

from routectl.runtime import answer as answer_module
from routectl.runtime.answer import Answer, EventStream


class _Buffered(web.StreamResponse):
    """The stream answer before EventStream: aiohttp's path with its head buffered."""

    _send_headers_immediately = False


HEADERS = {"Content-Type": "application/json", "x-routectl-table": "abc", "x-request-id": "r1"}


def _app(signal: bool) -> web.Application:
    async def make(request: web.Request) -> web.StreamResponse:
        status = int(request.query.get("status", "200"))
        body = request.query.get("body", '{"a":1}').encode()
        kind = request.query.get("kind")
        if kind == "answer":
            return Answer(status, body, CIMultiDict(HEADERS))
        if kind in ("stream", "buffered"):
            sse = {**HEADERS, "Content-Type": "text/event-stream"}
            out: web.StreamResponse = (
                EventStream(status, CIMultiDict(sse))
                if kind == "stream"
                else _Buffered(status=status, headers=sse)
            )
            await out.prepare(request)
            await out.write(b"data: 1\n\n")
            await out.write(b"data: 2\n\n")
            await out.write_eof()
            return out
        return web.Response(status=status, body=body, headers=HEADERS)

    app = web.Application()
    app.router.add_route("*", "/", make)
    if signal:

        async def stamp(request: web.Request, response: web.StreamResponse) -> None:
            response.headers["x-signal"] = "yes"

        app.on_response_prepare.append(stamp)
    return app


async def _raw(port: int, head: str) -> bytes:
    """Everything the server writes within 0.3 s of the request (or until it closes)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode())
    await writer.drain()
    data = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 0.3):
            data += chunk
    except TimeoutError:  # a keep-alive connection: the answer is all there is
        pass
    writer.close()
    return re.sub(rb"Date: [^\r]*\r\n", b"Date: -\r\n", data)


@pytest.mark.parametrize("signal", [False, True])
@pytest.mark.parametrize(
    ("method", "query", "version", "connection"),
    [
        ("POST", "", "1.1", ""),
        ("POST", "", "1.1", "close"),
        ("POST", "", "1.0", ""),
        ("POST", "", "1.0", "keep-alive"),
        ("HEAD", "", "1.1", ""),
        ("POST", "&body=", "1.1", ""),
        ("POST", "&status=204&body=", "1.1", ""),
        ("POST", "&status=404", "1.1", ""),
    ],
)
async def test_answer_writes_the_bytes_of_web_response(
    signal: bool, method: str, query: str, version: str, connection: str
) -> None:
    runner = web.AppRunner(_app(signal))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        wire = {}
        for kind in ("response", "answer", "buffered", "stream"):
            head = (
                f"{method} /?kind={kind}{query} HTTP/{version}\r\nHost: x\r\nContent-Length: 0\r\n"
            )
            if connection:
                head += f"Connection: {connection}\r\n"
            wire[kind] = await _raw(port, head + "\r\n")
        assert wire["answer"] == wire["response"]
        assert wire["stream"] == wire["buffered"]
        assert wire["answer"].startswith(f"HTTP/{version} ".encode())
    finally:
        await runner.cleanup()


def test_the_constructors_leave_what_aiohttps_leave_on_the_installed_aiohttp() -> None:
    # the shortcut is on here; a newer aiohttp whose constructors set more turns it off
    assert answer_module._SAME_AS_AIOHTTP is True
    assert answer_module._constructors_agree()


async def test_an_aiohttp_that_disagrees_gets_its_own_constructors_and_the_same_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(answer_module, "_SAME_AS_AIOHTTP", False)
    built = Answer(200, b"{}", CIMultiDict(HEADERS))
    # aiohttp's own constructor ran: it sets what the shortcut leaves to class attributes
    assert "_compressed_body" in vars(built) and built.body == b"{}"
    await test_answer_writes_the_bytes_of_web_response(False, "POST", "", "1.1", "")
    await test_answer_writes_the_bytes_of_web_response(True, "POST", "", "1.1", "close")
