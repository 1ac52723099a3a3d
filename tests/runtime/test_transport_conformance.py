"""HTTP/1.1 conformance of the lean upstream client (runtime/transport) against real local servers.

Raw asyncio servers script the wire byte by byte (framing, closes, stalls, malformed answers);
aiohttp servers stand for a real upstream framework (chunked streaming, TLS).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator

import aiohttp
import pytest
import trustme
import uvloop
from aiohttp import web
from rawserver import RawServer, Request, chunk, response
from yarl import URL

from routectl.runtime.transport import (
    Limits,
    ResponseTooLarge,
    Transport,
    UpstreamConnectError,
    UpstreamDisconnected,
    UpstreamProtocolError,
    UpstreamTimeout,
)

pytestmark = [
    pytest.mark.e2e,
    # the per-module loop policy below: pytest-asyncio's replacement (a loop-factories hook) would
    # parametrize every async test of the suite, renaming their snapshots
    pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy" fixture'),
]

TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=2, sock_read=2)
BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-test"}


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Every test on asyncio's loop and on uvloop's (what `routectl serve` runs on): their
    transports differ in pause/resume, abort and when callbacks run."""
    policy: asyncio.AbstractEventLoopPolicy = (
        uvloop.EventLoopPolicy() if request.param == "uvloop" else asyncio.DefaultEventLoopPolicy()
    )
    return policy


@pytest.fixture
async def client() -> AsyncIterator[Transport]:
    transport = Transport()
    yield transport
    await transport.close()


async def serve(script: object) -> RawServer:
    server = RawServer(script)  # type: ignore[arg-type]
    return await server.start()


async def post(
    client: Transport,
    url: str,
    body: bytes = BODY,
    timeout: aiohttp.ClientTimeout = TIMEOUT,
) -> tuple[int, bytes]:
    reply = await client.post(URL(url), data=body, headers=HEADERS, timeout=timeout)
    try:
        return reply.status, await reply.read()
    finally:
        reply.release()


async def answer_forever(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    while await server.read_request(reader) is not None:
        writer.write(response(b'{"n":%d}' % len(server.requests)))


# ---------------------------------------------------------------- framing


async def test_request_is_framed_once_with_host_and_length(client: Transport) -> None:
    server = await serve(answer_forever)
    try:
        headers = {**HEADERS, "Content-Length": "999", "Host": "evil.example"}
        reply = await client.post(URL(server.url), data=BODY, headers=headers, timeout=TIMEOUT)
        assert await reply.read() == b'{"n":1}'
        reply.release()
        (req,) = server.requests
        assert req.head.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
        assert req.body == BODY
        assert req.header(b"host") == b"127.0.0.1:%d" % server.port
        assert req.header_count(b"host") == 1 and req.header_count(b"content-length") == 1
        assert req.header(b"content-length") == b"%d" % len(BODY)
        assert req.header(b"authorization") == b"Bearer sk-test"
    finally:
        await server.close()


async def test_a_plain_mapping_is_encoded_afresh_each_time(client: Transport) -> None:
    server = await serve(answer_forever)
    try:
        headers = {"X-Turn": "one"}
        for turn in ("one", "two"):
            headers["X-Turn"] = turn  # the same dict, changed: no stale encoding
            reply = await client.post(URL(server.url), data=BODY, headers=headers, timeout=TIMEOUT)
            await reply.read()
            reply.release()
        assert [r.header(b"x-turn") for r in server.requests] == [b"one", b"two"]
    finally:
        await server.close()


async def test_header_with_a_line_break_is_refused_before_sending(client: Transport) -> None:
    server = await serve(answer_forever)
    try:
        with pytest.raises(ValueError, match="line break"):
            await client.post(
                URL(server.url),
                data=BODY,
                headers={"X-Evil": "a\r\nX-Injected: 1"},
                timeout=TIMEOUT,
            )
        assert server.requests == []
    finally:
        await server.close()


async def test_content_length_body(client: Transport) -> None:
    big = b"x" * 300_000  # several reads, flow control engaged
    server = await serve(lambda r, w, s: _once(r, w, s, response(big, headers=b"X-Kind: big\r\n")))
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert reply.status == 200 and reply.headers["X-Kind"] == "big"
        assert await reply.read() == big
        reply.release()
    finally:
        await server.close()


async def _once(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer, data: bytes
) -> None:
    await server.read_request(reader)
    writer.write(data)
    await writer.drain()
    await server.wait_eof(reader)


async def test_chunked_body_is_relayed_chunk_by_chunk(client: Transport) -> None:
    second = asyncio.Event()

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"data: 1\n\n"))
        await second.wait()  # the client must see the first chunk before the second is sent
        w.write(chunk(b"data: 2\n\n") + b"0\r\n\r\n")
        while await s.read_request(r) is not None:
            w.write(response())

    server = await serve(script)
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert await reply.content.readany() == b"data: 1\n\n"
        assert not reply.content.at_eof()  # more is to come
        second.set()
        assert await reply.content.readany() == b"data: 2\n\n"
        # the last chunk and the body's end came in one packet: the relay knows it is the end
        assert reply.content.at_eof()
        assert await reply.content.readany() == b""
        reply.release()
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert server.connections == 1  # a chunked answer read to its end keeps the connection
    finally:
        await server.close()


async def test_chunked_body_read_whole_through_aiohttp(client: Transport) -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse()
        out.enable_chunked_encoding()
        await out.prepare(request)
        for i in range(50):
            await out.write(b"part %d;" % i)
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner, port = await _run_app(app)
    try:
        status, body = await post(client, f"http://127.0.0.1:{port}/v1/chat/completions")
        assert status == 200
        assert body == b"".join(b"part %d;" % i for i in range(50))
    finally:
        await runner.cleanup()


async def _run_app(
    app: web.Application, ssl_context: ssl.SSLContext | None = None
) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port


async def test_body_until_close_for_http10(client: Transport) -> None:
    server = await serve(
        lambda r, w, s: _http10(r, w, s),
    )
    try:
        assert await post(client, server.url) == (200, b"the whole body")
        assert await post(client, server.url) == (200, b"the whole body")
        assert server.connections == 2  # such a connection is never pooled
    finally:
        await server.close()


async def _http10(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
    await s.read_request(r)
    w.write(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nthe whole body")
    await w.drain()
    w.close()


# ---------------------------------------------------------------- keep-alive


async def test_keep_alive_reuses_one_connection(client: Transport) -> None:
    server = await serve(answer_forever)
    try:
        for n in range(1, 6):
            assert await post(client, server.url) == (200, b'{"n":%d}' % n)
        assert server.connections == 1
        assert [r.connection for r in server.requests] == [1] * 5
    finally:
        await server.close()


async def test_connection_close_is_not_reused(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(response(headers=b"Connection: close\r\n"))
        await w.drain()

    server = await serve(script)
    try:
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert server.connections == 2
    finally:
        await server.close()


async def test_idle_connection_closed_by_upstream_is_replaced_before_sending(
    client: Transport,
) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(response())  # keep-alive implied (HTTP/1.1) ...
        await w.drain()
        w.close()  # ... then the upstream drops it while it sits idle in the pool

    server = await serve(script)
    try:
        assert await post(client, server.url) == (200, b'{"ok":true}')
        await asyncio.sleep(0.1)  # the close reaches the client while the connection is idle
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert server.connections == 2
        assert len(server.requests) == 2  # each request sent exactly once
    finally:
        await server.close()


async def test_post_is_never_resent_when_the_upstream_closes_after_receiving_it(
    client: Transport,
) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(response())
        await s.read_request(r)  # the second request arrives on the pooled connection ...
        w.close()  # ... and the upstream closes without a byte of answer

    server = await serve(script)
    try:
        assert await post(client, server.url) == (200, b'{"ok":true}')
        with pytest.raises(UpstreamDisconnected) as caught:
            await post(client, server.url)
        assert isinstance(caught.value, aiohttp.ClientError)  # upstream.py: connect_error
        await asyncio.sleep(0.1)
        assert len(server.requests) == 2  # not silently re-sent on a fresh connection
        assert server.connections == 1
    finally:
        await server.close()


async def test_idle_connections_expire_after_keepalive() -> None:
    client = Transport(Limits(keepalive_s=0.2))
    eof = asyncio.Event()

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(response())
        if await s.wait_eof(r, timeout=3):
            eof.set()

    server = await serve(script)
    try:
        assert await post(client, server.url) == (200, b'{"ok":true}')
        await asyncio.wait_for(eof.wait(), 3)  # the client closed the idle connection itself
    finally:
        await client.close()
        await server.close()


async def test_unsolicited_bytes_make_a_connection_unusable(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(response())
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(response(b"nobody asked"))  # a second answer to one request
        await s.wait_eof(r)

    server = await serve(script)
    try:
        assert await post(client, server.url) == (200, b'{"ok":true}')
        await asyncio.sleep(0.2)
        server.script = answer_forever
        assert await post(client, server.url) == (200, b'{"n":2}')
        assert server.connections == 2
    finally:
        await server.close()


async def test_connection_limit_queues_requests() -> None:
    client = Transport(Limits(max_connections=2))
    busy = 0
    most = 0

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        nonlocal busy, most
        while await s.read_request(r) is not None:
            busy += 1
            most = max(most, busy)
            await asyncio.sleep(0.05)
            busy -= 1
            w.write(response())

    server = await serve(script)
    try:
        results = await asyncio.gather(*(post(client, server.url) for _ in range(6)))
        assert results == [(200, b'{"ok":true}')] * 6
        assert server.connections == 2 and most == 2
    finally:
        await client.close()
        await server.close()


# ---------------------------------------------------------------- early close, slow, oversized


async def test_early_close_mid_body_is_an_error(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b")
        await w.drain()
        w.close()

    server = await serve(script)
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        with pytest.raises(UpstreamDisconnected, match="mid-body"):
            await reply.read()
        reply.release()
    finally:
        await server.close()


async def test_early_close_mid_chunked_stream_is_an_error_after_the_chunks(
    client: Transport,
) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(b"data: 1\n\n"))
        await w.drain()
        w.close()

    server = await serve(script)
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert await reply.content.readany() == b"data: 1\n\n"
        with pytest.raises(aiohttp.ClientError):
            await reply.content.readany()
        reply.release()
    finally:
        await server.close()


async def test_close_before_any_answer(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.close()

    server = await serve(script)
    try:
        with pytest.raises(UpstreamDisconnected, match="before answering"):
            await post(client, server.url)
        assert len(server.requests) == 1
    finally:
        await server.close()


async def test_slow_body_within_the_read_timeout(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(5):
            await asyncio.sleep(0.1)  # 0.5 s in all, each gap under the 0.3 s read timeout
            w.write(chunk(b"%d" % i))
        w.write(b"0\r\n\r\n")
        await s.wait_eof(r)

    server = await serve(script)
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=0.3)
        assert await post(client, server.url, timeout=timeout) == (200, b"01234")
    finally:
        await server.close()


async def test_stalled_body_times_out_and_drops_the_connection(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await s.wait_eof(r)  # never the rest

    server = await serve(script)
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=0.2)
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=timeout)
        with pytest.raises(UpstreamTimeout) as caught:
            await reply.read()
        assert isinstance(caught.value, TimeoutError)  # upstream.py: "timeout"
        reply.release()
        await asyncio.sleep(0.1)
        assert server.closed_by_peer == 1
    finally:
        await server.close()


async def test_no_answer_times_out(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        await s.wait_eof(r)

    server = await serve(script)
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await post(client, server.url, timeout=timeout)
        assert 0.15 < loop.time() - started < 1.5
    finally:
        await server.close()


async def test_a_shorter_timeout_on_a_reused_connection_is_honoured(client: Transport) -> None:
    # the connection's timer outlives an exchange; a later, shorter one must still fire in time
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(response())
        await s.read_request(r)  # the second request gets no answer
        await s.wait_eof(r)

    server = await serve(script)
    try:
        long = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=10)
        assert await post(client, server.url, timeout=long) == (200, b'{"ok":true}')
        short = aiohttp.ClientTimeout(total=None, sock_connect=1, sock_read=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(UpstreamTimeout):
            await post(client, server.url, timeout=short)
        assert loop.time() - started < 2
        assert server.connections == 1
    finally:
        await server.close()


async def test_total_timeout_bounds_a_trickling_body(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(100):
            await asyncio.sleep(0.05)
            w.write(chunk(b"."))

    server = await serve(script)
    try:
        timeout = aiohttp.ClientTimeout(total=0.4, sock_connect=1, sock_read=1)
        with pytest.raises(UpstreamTimeout, match="total"):
            await post(client, server.url, timeout=timeout)
    finally:
        await server.close()


async def test_connect_timeout() -> None:
    # a listening socket that never accepts, its backlog full: further SYNs go unanswered
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    client = Transport()
    try:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=0.3, sock_read=5)
        with pytest.raises(UpstreamTimeout, match="connect"):
            await post(client, f"http://127.0.0.1:{port}/v1/chat/completions", timeout=timeout)
    finally:
        await client.close()
        for s in fillers:
            s.close()
        listener.close()


async def test_connection_refused(client: Transport) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    with pytest.raises(UpstreamConnectError, match="cannot connect"):
        await post(client, f"http://127.0.0.1:{port}/v1/chat/completions")


async def test_oversized_body_by_content_length_fails_before_reading() -> None:
    client = Transport(Limits(max_body_bytes=1000))
    server = await serve(lambda r, w, s: _once(r, w, s, response(b"y" * 5000)))
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        with pytest.raises(ResponseTooLarge, match="over 1000 bytes"):
            await reply.read()
        assert isinstance(ResponseTooLarge("x"), aiohttp.ClientError)
        reply.release()
    finally:
        await client.close()
        await server.close()


async def test_oversized_chunked_body_fails_once_over_the_limit() -> None:
    client = Transport(Limits(max_body_bytes=1000))
    sent = 0

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        nonlocal sent
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(10_000):
                w.write(chunk(b"z" * 500))
                sent += 500
                await w.drain()
                await asyncio.sleep(0)
        except ConnectionError:
            pass

    server = await serve(script)
    try:
        with pytest.raises(ResponseTooLarge):
            await post(client, server.url)
        await asyncio.sleep(0.2)
        assert sent < 5_000_000  # the client hung up instead of reading 5 MB
    finally:
        await client.close()
        await server.close()


async def test_a_stream_is_not_bounded_in_total_but_buffers_at_most_high_water() -> None:
    client = Transport(Limits(max_body_bytes=1000, high_water=64 * 1024, low_water=16 * 1024))
    total = 2 * 1024 * 1024

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // 8192):
            w.write(b"s" * 8192)
            await w.drain()
        await s.wait_eof(r)

    server = await serve(script)
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        got = 0
        most = 0
        await asyncio.sleep(0.2)  # a slow reader: the client stops reading the socket meanwhile
        while data := await reply.content.readany():
            got += len(data)
            most = max(most, len(data))
        reply.release()
        assert got == total
        assert most < 64 * 1024 + 256 * 1024  # high water plus at most one socket read
    finally:
        await client.close()
        await server.close()


async def test_oversized_headers_are_refused() -> None:
    client = Transport(Limits(max_header_bytes=4096))
    big = b"X-Big: " + b"h" * 8000 + b"\r\n"
    server = await serve(lambda r, w, s: _once(r, w, s, response(headers=big)))
    try:
        with pytest.raises(ResponseTooLarge, match="headers"):
            await post(client, server.url)
    finally:
        await client.close()
        await server.close()


# ---------------------------------------------------------------- headers and statuses


async def test_repeated_headers_are_all_kept(client: Transport) -> None:
    extra = b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nX-Dup: one\r\nx-dup: two\r\n"
    server = await serve(lambda r, w, s: _once(r, w, s, response(headers=extra)))
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert reply.headers.getall("Set-Cookie") == ["a=1", "b=2"]
        assert reply.headers.getall("X-DUP") == ["one", "two"]
        await reply.read()
        reply.release()
    finally:
        await server.close()


@pytest.mark.parametrize(
    ("header", "media_type"),
    [
        (b"Content-Type: text/event-stream\r\n", "text/event-stream"),
        (b"content-type: Text/Event-Stream ; charset=utf-8\r\n", "text/event-stream"),
        (b"X-Other: 1\r\n", "application/octet-stream"),  # none: aiohttp's default too
    ],
)
async def test_the_content_type_is_its_media_type_as_aiohttp_gives_it(
    client: Transport, header: bytes, media_type: str
) -> None:
    server = await serve(lambda r, w, s: _once(r, w, s, response(headers=header)))
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert reply.content_type == media_type
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url, data=BODY) as theirs,
        ):
            assert theirs.content_type == media_type  # the same answer, read by aiohttp
        await reply.read()
        reply.release()
    finally:
        await server.close()


async def test_folded_header_is_refused(client: Transport) -> None:
    # RFC 9112 §5.2: a gateway rejects obs-fold (answers 502) or unfolds it; this client rejects
    folded = b"X-Folded: one\r\n two\r\n"
    server = await serve(lambda r, w, s: _once(r, w, s, response(headers=folded)))
    try:
        with pytest.raises(UpstreamProtocolError, match="invalid HTTP response"):
            await post(client, server.url)
    finally:
        await server.close()


async def test_conflicting_content_lengths_are_refused(client: Transport) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"
    server = await serve(lambda r, w, s: _once(r, w, s, raw))
    try:
        with pytest.raises(UpstreamProtocolError):
            await post(client, server.url)
    finally:
        await server.close()


async def test_garbage_instead_of_http_is_refused(client: Transport) -> None:
    server = await serve(lambda r, w, s: _once(r, w, s, b"SSH-2.0-OpenSSH\r\n\r\n"))
    try:
        with pytest.raises(UpstreamProtocolError):
            await post(client, server.url)
    finally:
        await server.close()


async def test_informational_answers_are_skipped(client: Transport) -> None:
    raw = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
        + response(b"final", headers=b"X-Final: yes\r\n")
    )
    server = await serve(lambda r, w, s: _once(r, w, s, raw))
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert reply.status == 200
        assert reply.headers.get("X-Final") == "yes" and "Link" not in reply.headers
        assert await reply.read() == b"final"
        reply.release()
    finally:
        await server.close()


@pytest.mark.parametrize("status", [b"204 No Content", b"304 Not Modified"])
async def test_bodyless_statuses_keep_the_connection(client: Transport, status: bytes) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        await s.read_request(r)
        w.write(b"HTTP/1.1 %s\r\nETag: x\r\n\r\n" % status)
        await s.read_request(r)
        w.write(response())
        await s.wait_eof(r)

    server = await serve(script)
    try:
        assert await post(client, server.url) == (int(status[:3]), b"")
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert server.connections == 1
    finally:
        await server.close()


async def test_redirect_is_returned_not_followed(client: Transport) -> None:
    raw = response(b"", b"307 Temporary Redirect", b"Location: http://127.0.0.1:1/steal\r\n")
    server = await serve(lambda r, w, s: _once(r, w, s, raw))
    try:
        reply = await client.post(
            URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT, allow_redirects=True
        )
        assert reply.status == 307 and reply.headers["Location"].endswith("/steal")
        await reply.read()
        reply.release()
        assert len(server.requests) == 1
    finally:
        await server.close()


async def test_error_statuses_come_back_with_their_body(client: Transport) -> None:
    raw = response(b'{"error":"slow down"}', b"429 Too Many Requests", b"Retry-After: 7\r\n")
    server = await serve(lambda r, w, s: _once(r, w, s, raw))
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        assert reply.status == 429 and reply.headers["Retry-After"] == "7"
        assert await reply.read() == b'{"error":"slow down"}'
        reply.release()
    finally:
        await server.close()


# ---------------------------------------------------------------- cancellation


async def test_cancelled_request_closes_its_connection(client: Transport) -> None:
    closed = asyncio.Event()

    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        if await s.read_request(r) is None:
            return
        if len(s.requests) == 1:
            if await s.wait_eof(r):  # the first request never gets an answer
                closed.set()
            return
        w.write(response())
        await s.wait_eof(r)

    server = await serve(script)
    try:
        task = asyncio.ensure_future(post(client, server.url))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(closed.wait(), 2)  # the upstream saw the connection close
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert server.connections == 2  # the cancelled one was not pooled
    finally:
        await server.close()


async def test_reader_cancelled_mid_body_does_not_pool_the_connection(client: Transport) -> None:
    async def script(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: RawServer) -> None:
        while await s.read_request(r) is not None:
            if len(s.requests) == 1:
                w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
            else:
                w.write(response())

    server = await serve(script)
    try:
        reply = await client.post(URL(server.url), data=BODY, headers=HEADERS, timeout=TIMEOUT)
        task = asyncio.ensure_future(reply.read())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reply.release()  # what upstream.py's `finally` does
        assert await post(client, server.url) == (200, b'{"ok":true}')
        assert server.connections == 2
    finally:
        await server.close()


async def test_closed_client_refuses_new_requests() -> None:
    client = Transport()
    await client.close()
    assert client.closed
    with pytest.raises(UpstreamConnectError, match="closed"):
        await post(client, "http://127.0.0.1:9/v1/chat/completions")


# ---------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def _tls_app(ca: trustme.CA) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"tls": request.secure, "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)
    return await _run_app(app, server_ctx)


async def test_tls_to_a_self_signed_upstream(ca: trustme.CA) -> None:
    runner, port = await _tls_app(ca)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client = Transport(ssl_context=client_ctx)
    try:
        for host in ("localhost", "127.0.0.1"):
            status, body = await post(client, f"https://{host}:{port}/v1/chat/completions")
            assert status == 200 and b'"tls": true' in body and b"hi" in body
    finally:
        await client.close()
        await runner.cleanup()


async def test_tls_with_an_untrusted_certificate_fails_to_connect(ca: trustme.CA) -> None:
    runner, port = await _tls_app(ca)
    client = Transport()  # the system's CAs only
    try:
        with pytest.raises(UpstreamConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await post(client, f"https://localhost:{port}/v1/chat/completions")
    finally:
        await client.close()
        await runner.cleanup()


async def test_tls_with_the_wrong_host_name_fails(ca: trustme.CA) -> None:
    runner, port = await _tls_app(ca)
    other = trustme.CA()  # a certificate for another name, from a trusted CA
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    other.issue_cert("upstream.example").configure_cert(server_ctx)
    await runner.cleanup()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text="x")

    app = web.Application()
    app.router.add_post("/v1/chat/completions", handler)
    runner, port = await _run_app(app, server_ctx)
    client_ctx = ssl.create_default_context()
    other.configure_trust(client_ctx)
    client = Transport(ssl_context=client_ctx)
    try:
        with pytest.raises(UpstreamConnectError):
            await post(client, f"https://localhost:{port}/v1/chat/completions")
    finally:
        await client.close()
        await runner.cleanup()


def test_request_shape_helpers() -> None:
    req = Request(b"POST / HTTP/1.1\r\nA: 1\r\na: 2\r\n\r\n", b"", 1)
    assert req.header(b"A") == b"1" and req.header_count(b"a") == 2
