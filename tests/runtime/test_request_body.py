"""runtime/request_body.py: a body aiohttp holds whole is taken from its buffer, consumed as
`read()` consumes it; every other body (still arriving, chunked, too large, empty, big) is left
to `read()`. On a real server, with the bytes a client sends on a raw socket."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web

from routectl.runtime.request_body import buffered_body


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async def handler(request: web.Request) -> web.StreamResponse:
        fast = buffered_body(request)
        try:
            body = await request.read()  # after the shortcut: the same bytes again
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"fast": fast is not None, "too_large": True})
        return web.json_response(
            {
                "fast": fast is not None,
                "same": fast is None or fast == body,
                "body": body.decode(),
                "drained": request._payload.at_eof(),  # eof, and nothing left in the buffer
            }
        )

    app = web.Application(client_max_size=4096)
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


async def _exchange(port: int, *parts: bytes, answers: int = 1) -> list[dict[str, object]]:
    """Send `parts` (0.1 s apart) on one connection; the JSON bodies of `answers` answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, part in enumerate(parts):
            if i:
                await asyncio.sleep(0.1)
            writer.write(part)
            await writer.drain()
        out = []
        for _ in range(answers):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            out.append(orjson.loads(await reader.readexactly(length)))
        return out
    finally:
        writer.close()


def _post(body: bytes, *extra: str) -> bytes:
    head = ["POST / HTTP/1.1", "Host: x", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def test_a_body_that_came_with_its_head_is_taken_whole_and_read_again_the_same(
    port: int,
) -> None:
    [seen] = await _exchange(port, _post(b'{"model":"m"}'))
    assert seen == {"fast": True, "same": True, "body": '{"model":"m"}', "drained": True}


async def test_two_requests_in_one_write_are_each_read_whole(port: int) -> None:
    answers = await _exchange(port, _post(b"first") + _post(b"second"), answers=2)
    assert [a["body"] for a in answers] == ["first", "second"]
    assert all(a["same"] and a["drained"] for a in answers)


async def test_a_body_still_arriving_is_left_to_read(port: int) -> None:
    whole = _post(b"0123456789" * 10)
    [seen] = await _exchange(port, whole[:-30], whole[-30:])
    assert seen["fast"] is False and seen["body"] == "0123456789" * 10 and seen["drained"]


async def test_a_chunked_body_is_left_to_read(port: int) -> None:
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    [seen] = await _exchange(port, head + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert seen["fast"] is False and seen["body"] == "abcde"


async def test_a_body_over_the_limit_is_left_to_reads_413(port: int) -> None:
    [seen] = await _exchange(port, _post(b"x" * 5000))
    assert seen == {"fast": False, "too_large": True}


async def test_an_empty_body_is_left_to_read(port: int) -> None:
    [seen] = await _exchange(port, _post(b""))
    assert seen["fast"] is False and seen["body"] == "" and seen["drained"]


async def test_a_compressed_body_is_read_decompressed_either_way(port: int) -> None:
    packed = gzip.compress(b'{"model":"gz"}')
    [seen] = await _exchange(port, _post(packed, "Content-Encoding: gzip"))
    assert seen["body"] == '{"model":"gz"}' and seen["same"] and seen["drained"]
