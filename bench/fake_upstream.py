"""A fast fake OpenAI upstream for the benchmark: real HTTP/1.1 keep-alive on a raw asyncio protocol.

Not part of the product. `POST /v1/chat/completions` answers a small constant JSON body (with the
requested `model` echoed), or an SSE stream of a handful of chunks and `[DONE]` when `stream: true`;
`POST /v1/messages` does the same as Anthropic's Messages API (the key in `x-api-key`, the stream
as Anthropic's named events).
`GET /v1/models`, `GET /healthz` and `GET /stats` (requests per model, to check the routing spread)
exist too. A raw protocol on uvloop costs a fraction of an aiohttp handler, so the upstream, which
shares a core with the load generator, is never the bottleneck of what is measured.

Usage: python bench/fake_upstream.py --port 9001 [--api-key KEY] [--chunk-gap-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections import Counter
from typing import cast

import orjson

_MAX_HEAD = 64 * 1024

_COMPLETION_HEAD = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":'
)
_COMPLETION_TAIL = (
    b',"choices":[{"index":0,"message":{"role":"assistant","content":"Hello from the fake'
    b' upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,'
    b'"total_tokens":15}}'
)
_CHUNK_HEAD = (
    b'{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":'
)
_STREAM_DELTAS = (
    b',"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}',
    b',"choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}',
    b',"choices":[{"index":0,"delta":{"content":" from the"},"finish_reason":null}]}',
    b',"choices":[{"index":0,"delta":{"content":" fake upstream."},"finish_reason":null}]}',
    b',"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
)
_USAGE_DELTA = b',"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}'
_DONE = b"data: [DONE]\n\n"

# the same answer as Anthropic's Messages API writes it
_MESSAGE_HEAD = b'{"id":"msg_bench","type":"message","role":"assistant","model":'
_MESSAGE_TAIL = (
    b',"content":[{"type":"text","text":"Hello from the fake upstream."}],"stop_reason":"end_turn",'
    b'"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":6}}'
)
_MESSAGE_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_bench","type":'
    b'"message","role":"assistant","content":[],"model":'
)
_MESSAGE_START_TAIL = (
    b',"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":9,"output_tokens":1}}}\n\n'
)


def _delta(text: bytes) -> bytes:
    return (
        b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
        b'{"type":"text_delta","text":"' + text + b'"}}\n\n'
    )


_MESSAGE_EVENTS = (
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n',
    b'event: ping\ndata: {"type":"ping"}\n\n',
    _delta(b"Hello"),
    _delta(b" from the"),
    _delta(b" fake upstream."),
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn",'
    b'"stop_sequence":null},"usage":{"output_tokens":6}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
)


def _status_line(code: int) -> bytes:
    reason = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found"}[code]
    return b"HTTP/1.1 %d %s\r\n" % (code, reason)


def _fixed(code: int, content_type: bytes, body: bytes, close: bool) -> bytes:
    conn = b"Connection: close\r\n" if close else b""
    return (
        _status_line(code)
        + b"Content-Type: "
        + content_type
        + b"\r\nContent-Length: %d\r\n" % len(body)
        + conn
        + b"Server: fake-upstream\r\n\r\n"
        + body
    )


def _error(code: int, message: str, close: bool) -> bytes:
    body = orjson.dumps({"error": {"code": str(code), "message": message}})
    return _fixed(code, b"application/json", body, close)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _dechunk(buf: bytearray, start: int) -> tuple[bytes, int] | None:
    """Decode a chunked request body starting at `start`; None while it is incomplete."""
    out = bytearray()
    pos = start
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";", 1)[0], 16)
        pos = eol + 2
        if size == 0:
            end = buf.find(b"\r\n", pos)  # no trailers expected; skip to the final CRLF
            if end < 0:
                return None
            return bytes(out), end + 2
        if len(buf) < pos + size + 2:
            return None
        out += buf[pos : pos + size]
        pos += size + 2


class UpstreamState:
    """Settings and per-model request counts shared by every connection."""

    def __init__(self, api_key: str | None, chunk_gap_s: float) -> None:
        self.expected_auth = b"bearer " + api_key.encode() if api_key else None
        self.expected_key = api_key.encode() if api_key else None  # Anthropic's x-api-key
        self.chunk_gap_s = chunk_gap_s
        self.counts: Counter[str] = Counter()


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive client connection: parse requests as they arrive, answer each at once."""

    def __init__(self, state: UpstreamState) -> None:
        self.state = state
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.streaming = False  # a gapped stream is being written; hold later requests

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they have its methods
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.streaming:
            self._drain()

    def _drain(self) -> None:
        while self.transport is not None and not self.streaming:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    self.transport.close()
                return
            lines = bytes(self.buf[:end]).split(b"\r\n")
            try:
                method, target, version = lines[0].split(b" ", 2)
            except ValueError:
                self.transport.close()
                return
            length = 0
            chunked = False
            close = version == b"HTTP/1.0"
            auth = b""
            api_key = b""
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding":
                    chunked = b"chunked" in value.lower()
                elif name == b"connection":
                    v = value.strip().lower()
                    close = v == b"close" or (close and v != b"keep-alive")
                elif name == b"authorization":
                    auth = value.strip()
                elif name == b"x-api-key":
                    api_key = value.strip()
            start = end + 4
            if chunked:
                decoded = _dechunk(self.buf, start)
                if decoded is None:
                    return
                body, consumed = decoded
            else:
                if len(self.buf) < start + length:
                    return
                body, consumed = bytes(self.buf[start : start + length]), start + length
            del self.buf[:consumed]
            path = target.split(b"?", 1)[0]
            if method == b"POST" and path == b"/v1/messages":
                self._messages(api_key, body, close)
            else:
                self._respond(method, path, auth, body, close)
            if close:
                self.transport.close()
                return

    def _respond(self, method: bytes, path: bytes, auth: bytes, body: bytes, close: bool) -> None:
        assert self.transport is not None
        write = self.transport.write
        if method == b"POST" and path == b"/v1/chat/completions":
            expected = self.state.expected_auth
            if expected is not None and auth.lower() != expected:
                write(_error(401, "invalid api key", close))
                return
            try:
                req = orjson.loads(body)
                model = orjson.dumps(str(req["model"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                write(_error(400, "body must be JSON with a model", close))
                return
            self.state.counts[req["model"]] += 1
            if req.get("stream") is True:
                opts = req.get("stream_options")
                usage = isinstance(opts, dict) and opts.get("include_usage") is True
                self._stream(model, usage, close)
            else:
                write(
                    _fixed(
                        200, b"application/json", _COMPLETION_HEAD + model + _COMPLETION_TAIL, close
                    )
                )
        elif method == b"GET" and path == b"/v1/models":
            models = [{"id": m, "object": "model", "owned_by": "bench"} for m in self.state.counts]
            write(
                _fixed(
                    200,
                    b"application/json",
                    orjson.dumps({"object": "list", "data": models}),
                    close,
                )
            )
        elif method == b"GET" and path == b"/healthz":
            write(_fixed(200, b"text/plain", b"ok", close))
        elif method == b"GET" and path == b"/stats":
            write(_fixed(200, b"application/json", orjson.dumps(dict(self.state.counts)), close))
        else:
            write(_error(404, "not found", close))

    def _messages(self, api_key: bytes, body: bytes, close: bool) -> None:
        assert self.transport is not None
        expected = self.state.expected_key
        if expected is not None and api_key != expected:
            self.transport.write(_error(401, "invalid x-api-key", close))
            return
        try:
            req = orjson.loads(body)
            model = orjson.dumps(str(req["model"]))
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.transport.write(_error(400, "body must be JSON with a model", close))
            return
        self.state.counts[req["model"]] += 1
        if req.get("stream") is not True:
            answer = _MESSAGE_HEAD + model + _MESSAGE_TAIL
            self.transport.write(_fixed(200, b"application/json", answer, close))
            return
        events = [_MESSAGE_START + model + _MESSAGE_START_TAIL, *_MESSAGE_EVENTS]
        self._write_stream([_chunk(e) for e in events], close)

    def _stream(self, model: bytes, usage: bool, close: bool) -> None:
        events = [_chunk(b"data: " + _CHUNK_HEAD + model + d + b"\n\n") for d in _STREAM_DELTAS]
        if usage:
            events.append(_chunk(b"data: " + _CHUNK_HEAD + model + _USAGE_DELTA + b"\n\n"))
        events.append(_chunk(_DONE))
        self._write_stream(events, close)

    def _write_stream(self, events: list[bytes], close: bool) -> None:
        """A chunked SSE answer: the events as they are, or spaced by --chunk-gap-ms."""
        assert self.transport is not None
        head = (
            _status_line(200)
            + b"Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
            + b"Transfer-Encoding: chunked\r\n"
            + (b"Connection: close\r\n" if close else b"")
            + b"Server: fake-upstream\r\n\r\n"
        )
        events[-1] += b"0\r\n\r\n"
        gap = self.state.chunk_gap_s
        if gap <= 0:
            self.transport.write(head + b"".join(events))
            return
        # spaced chunks show whether a gateway forwards them as they come or buffers the stream
        self.streaming = True
        self.transport.write(head + events[0])
        loop = asyncio.get_running_loop()

        def send(i: int) -> None:
            if self.transport is None:
                return
            self.transport.write(events[i])
            if i + 1 < len(events):
                loop.call_later(gap, send, i + 1)
                return
            self.streaming = False
            if close:
                self.transport.close()
            else:
                self._drain()

        loop.call_later(gap, send, 1)


async def serve(host: str, port: int, state: UpstreamState) -> None:
    """Serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: UpstreamProtocol(state), host, port, backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"fake upstream listening on http://{host}:{port}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    """Parse arguments and run the fake upstream on uvloop when it is installed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--api-key", default=None, help="require this bearer key (checks the gateway sends it)"
    )
    parser.add_argument("--chunk-gap-ms", type=float, default=0.0, help="pause between SSE chunks")
    args = parser.parse_args()
    state = UpstreamState(args.api_key, args.chunk_gap_ms / 1000.0)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port, state))
        return
    uvloop.run(serve(args.host, args.port, state))


if __name__ == "__main__":
    main()
