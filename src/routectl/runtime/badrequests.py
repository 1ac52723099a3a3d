"""Requests aiohttp cannot parse (a header too long, a control byte in a header value): a JSON 400
in the SPEC's shape that quotes nothing the client sent, and one log line without a traceback.

aiohttp's own answer quotes the offending header line in a plain-text body and logs it with a
traceback: for `Authorization: Bearer <key>` that put the client's key into stderr and the answer.

The same protocol class serves a connection's requests with each handler awaited in place
(runtime/inline_start.py) where the installed aiohttp and CPython allow it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from routectl.runtime.inline_start import inline_start

__all__ = ["quiet_handlers"]

_log = logging.getLogger("routectl.runtime")
_BODY = orjson.dumps(
    {
        "error": {
            "code": "invalid_request",
            "message": "Malformed HTTP request: a request line or header is too long or holds "
            "characters HTTP does not allow",
        }
    }
)


class _QuietHandler(RequestHandler):
    """aiohttp's protocol, answering its parse errors without echoing them."""

    __slots__ = ()

    # aiohttp's connection loop, without a task per request when it can be had (inline_start.py)
    start = inline_start() or RequestHandler.start

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError) or status >= 500:
            return super().handle_error(request, status, exc, message)
        # the exception's text quotes the bytes it choked on: only its kind is logged
        _log.warning("malformed HTTP request from %s: %s", request.remote, type(exc).__name__)
        resp = web.Response(status=status, body=_BODY, content_type="application/json")
        resp.force_close()
        return resp


def quiet_handlers(server: web.Server) -> Callable[[], RequestHandler]:
    """A protocol factory like `server` itself, making _QuietHandlers."""
    loop: Any = server._loop  # what web.Server.__call__ passes on
    kwargs: dict[str, Any] = server._kwargs

    def make() -> RequestHandler:
        return _QuietHandler(server, loop=loop, **kwargs)

    return make
