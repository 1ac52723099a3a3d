"""A request's body taken straight from aiohttp's buffer when it has all arrived in one piece.

`await request.read()` walks about ten Python-level calls for a body aiohttp already holds
whole (read -> set_read_chunk_size -> readany twice -> _read_nowait twice -> assert_timeout
twice -> _read_nowait_chunk -> resume_reading -> ...), then copies it from a bytearray. A chat
request's body usually arrives with its head, so by the time the handler runs the payload is
complete: one bytes object in the payload's buffer. `buffered_body` takes that object and leaves
the payload and the request as `read()` would (the buffer drained, the byte counts moved on, the
body remembered for a later `read()`); anything else (a body still arriving, in several pieces,
chunked, too large, a paused transport, a payload of another kind) returns None and the caller
awaits aiohttp's `read()`, which handles it as before. tests/runtime/test_request_body.py holds
both paths to the same bytes on a real server.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.streams import StreamReader

__all__ = ["buffered_body"]


def buffered_body(request: web.BaseRequest) -> bytes | None:
    """The whole body, consumed as `read()` consumes it, when aiohttp holds it in one piece;
    None when `await request.read()` must read it."""
    payload = request._payload
    if type(payload) is not StreamReader or not payload._eof or payload._exception is not None:
        return None
    buffer = payload._buffer
    if len(buffer) != 1 or payload._buffer_offset or payload._http_chunk_splits:
        return None
    body = buffer[0]
    limit = request._client_max_size
    if (limit and len(body) > limit) or payload._protocol._reading_paused:
        return None  # read() answers 413 / resumes the transport
    # _read_nowait_chunk's bookkeeping; its resume_reading() has nothing to resume (not paused)
    buffer.popleft()
    payload._size -= len(body)
    payload._cursor += len(body)
    request._read_bytes = body
    return body
