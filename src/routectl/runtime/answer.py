"""A complete answer (a body of known bytes) written with fewer Python frames than aiohttp's
`web.Response`.

Under callgrind each Python-level call on this interpreter costs a few thousand instructions, and
a `web.Response` goes through about ten of them between its constructor and the last byte
(`__init__` -> `StreamResponse.__init__` -> `_set_status` -> the `body` setter; `_start` ->
`StreamResponse._start` -> `_prepare_headers` -> `_prepare_hook` -> `_write_headers`;
`write_eof` twice). `Answer` does the same work in three: the same status line, the same headers
in the same order (Content-Length after the given ones, then Date, Server, and Connection when
the connection closes), the same single write of head and body. Whatever `web.Response` would do
differently (HTTP/1.0, HEAD, an empty-body status, compression, cookies, an `on_response_prepare`
signal of a mount) goes through aiohttp's own path unchanged. `EventStream`, the streamed
answer, prepares its head the same way. tests/runtime/test_answer.py compares the bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import hdrs, web
from aiohttp.compression_utils import MAX_SYNC_CHUNK_SIZE
from aiohttp.helpers import must_be_empty_body, rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.web_response import REASON_PHRASES
from multidict import CIMultiDict

if TYPE_CHECKING:
    from aiohttp.abc import AbstractStreamWriter

__all__ = ["Answer", "EventStream"]


class _PreparedInOneFrame(web.StreamResponse):
    """`prepare` for `Answer` and `EventStream`: StreamResponse.prepare and then _start, in one
    frame for a plain answer (and without the `status` property and `request.method`'s reified
    first read); aiohttp's own `_start` for any other."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:  # StreamResponse.prepare's own first tests (aiohttp asks again)
            return None
        if self._payload_writer is not None:
            return self._payload_writer
        self._must_be_empty_body = must_be_empty_body(request._method, self._status)
        writer = _head(self, request)
        if writer is None:
            return await super()._start(request)  # Response's, or StreamResponse's
        await writer.write_headers(f"HTTP/1.1 {self._status} {self._reason}", self._headers)
        return writer


class Answer(_PreparedInOneFrame, web.Response):
    """`web.Response(status=status, body=body, headers=headers)` for bytes and a Content-Type
    among `headers`; `headers` becomes the answer's own (not copied: pass a fresh one)."""

    def __init__(self, status: int, body: bytes, headers: CIMultiDict[str]) -> None:
        if not _SAME_AS_AIOHTTP:
            web.Response.__init__(self, status=status, body=body, headers=headers)
            return
        # what Response.__init__ leaves behind for these arguments, without its frames
        self._state: dict[Any, Any] = {}
        self._headers = headers
        self._status = status
        self._reason = REASON_PHRASES.get(status, "")
        self._body = body
        self._zlib_executor_size = MAX_SYNC_CHUNK_SIZE
        self._zlib_executor = None

    async def write_eof(self, data: bytes = b"") -> None:
        writer = self._payload_writer
        if (
            self._eof_sent
            or data
            or writer is None
            or self._must_be_empty_body
            or self._compressed_body is not None
        ):
            await super().write_eof(data)
            return
        # Response.write_eof, then StreamResponse.write_eof, for a bytes body
        await writer.write_eof(self._body)  # type: ignore[arg-type]
        self._eof_sent = True
        self._req = None
        self._body_length = writer.output_size
        self._payload_writer = None


class EventStream(_PreparedInOneFrame):
    """A streamed answer (chunked) whose headers leave with its first chunk: one write, one TCP
    segment less before the client sees the first token (aiohttp's own Response buffers them the
    same way; a plain StreamResponse sends them alone at prepare()). Its head is prepared as
    `Answer`'s is, in one frame."""

    _send_headers_immediately = False

    def __init__(self, status: int, headers: CIMultiDict[str]) -> None:
        if not _SAME_AS_AIOHTTP:
            web.StreamResponse.__init__(self, status=status, headers=headers)
            return
        # what StreamResponse.__init__ leaves behind, without its two frames; `headers` becomes
        # the answer's own (not copied: pass a fresh one)
        self._state: dict[Any, Any] = {}
        self._headers = headers
        self._status = status
        self._reason = REASON_PHRASES.get(status, "")


def _left_behind(resp: web.StreamResponse) -> dict[str, Any]:
    """The attributes a constructor left on an answer, headers as a plain dict."""
    found = dict(vars(resp))
    found["_headers"] = dict(resp._headers)
    return found


def _constructors_agree() -> bool:
    """Whether `Answer` and `EventStream` leave every attribute aiohttp's constructors leave, with
    the same value (the class attributes supply the rest). Checked once at import, against the
    installed aiohttp: a version whose constructors set something more turns the shortcut off
    (aiohttp's own constructors run) rather than leaving an answer half built."""
    missing = object()
    pairs = (
        (
            web.Response(status=200, body=b"{}", headers=CIMultiDict(_PROBE)),
            Answer(200, b"{}", CIMultiDict(_PROBE)),
        ),
        (
            web.StreamResponse(status=200, headers=CIMultiDict(_PROBE)),
            EventStream(200, CIMultiDict(_PROBE)),
        ),
    )
    for real, ours in pairs:
        theirs, mine = _left_behind(real), _left_behind(ours)
        for name, value in theirs.items():
            if mine.get(name, getattr(ours, name, missing)) != value:
                return False
    return True


_PROBE = {hdrs.CONTENT_TYPE: "application/json"}
_SAME_AS_AIOHTTP = True  # while the check itself builds its probes
_SAME_AS_AIOHTTP = _constructors_agree()


def _head(resp: web.StreamResponse, request: web.BaseRequest) -> AbstractStreamWriter | None:
    """Response._start, then StreamResponse._prepare_headers, for an HTTP/1.1 answer: its bytes
    body (`Answer`), or chunked when it has none (`EventStream`: StreamResponse's `_body` is
    None). The same headers in the same order; the caller writes them (a coroutine frame less
    than `_write_headers`). None, with nothing done, when aiohttp's path would do more than this
    (the test is here rather than in a function of its own: one frame less per answer)."""
    body = resp._body
    if (
        (body is None and hdrs.CONTENT_LENGTH in resp._headers)  # a stream of a given length
        or resp._must_be_empty_body  # HEAD, 204, 304, 1xx: aiohttp's rules
        or request._version != HttpVersion11  # the `version` property's attribute
        or resp._compression
        or resp._cookies
        or resp._chunked
    ):
        return None
    # a Request runs its apps' on_response_prepare signals (CORS headers of a mount)
    match_info = getattr(request, "_match_info", None)
    if match_info is not None:
        for app in match_info._apps:
            if app._on_response_prepare:  # the property's attribute, without its frame
                return None
    resp._req = request
    writer = resp._payload_writer = request._payload_writer
    headers = resp._headers
    if body is None:
        writer.length = None
        writer.enable_chunking()
        headers[hdrs.TRANSFER_ENCODING] = "chunked"
    elif hdrs.CONTENT_LENGTH not in headers:
        length = len(body)  # type: ignore[arg-type]  # (an Answer's body is bytes)
        headers[hdrs.CONTENT_LENGTH] = str(length)
        writer.length = length
    else:
        writer.length = resp.content_length
    keep_alive = resp._keep_alive
    if keep_alive is None:
        # request.keep_alive's own expression (a property: a Python-level call)
        keep_alive = resp._keep_alive = not request._message.should_close
    if writer.length != 0:
        headers.setdefault(hdrs.CONTENT_TYPE, "application/octet-stream")
    if hdrs.DATE not in headers:
        headers[hdrs.DATE] = rfc822_formatted_time()
    headers.setdefault(hdrs.SERVER, SERVER_SOFTWARE)
    if not keep_alive and hdrs.CONNECTION not in headers:
        headers[hdrs.CONNECTION] = "close"
    return writer
