"""The envelope around every request: request id, table snapshot, error shape, headers, metrics, access log."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.typedefs import Handler

from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress import ClientFormat
from routectl.runtime.ingress.openai_chat import OPENAI_CHAT
from routectl.runtime.keys import (
    ANSWER_HEADERS,
    FORMATS,
    RECORD,
    REQUEST_ID,
    RUNTIME,
    SERVED,
    STARTED,
)
from routectl.runtime.retry import retry_headers

__all__ = ["envelope", "error_response"]

_log = logging.getLogger("routectl.runtime")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


class _RequestIds:
    """Unique ids without a getrandom() call per request: a random per-process prefix and a counter."""

    def __init__(self) -> None:
        self._reset()
        # a forked worker must not repeat its parent's ids (and checking getpid() per request
        # would be a system call each time)
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.prefix = os.urandom(6).hex()
        self.counter = itertools.count(1)

    def next(self) -> str:
        """24 hex characters: the prefix and a counter."""
        return f"{self.prefix}{next(self.counter):012x}"


_ids = _RequestIds()


def _request_id(request: web.Request) -> str:
    given = request.headers.get("x-request-id")
    if given and len(given) <= 128 and given.isascii() and given.isprintable():
        return given
    return _ids.next()


def error_response(error: RoutingError, fmt: ClientFormat = OPENAI_CHAT) -> web.Response:
    """A RoutingError in the shape of the client's format (the route's; OpenAI's by default),
    with `x-should-retry` (and the error's own headers, `Retry-After` among them)."""
    return web.Response(
        body=orjson.dumps(fmt.error_body(error)),
        status=error.status,
        content_type="application/json",
        headers=retry_headers(error),
    )


def _http_error(exc: web.HTTPException, max_body: int) -> RoutingError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return RoutingError(
            "request_too_large", 413, f"Request body is larger than {max_body} bytes"
        )
    code = _HTTP_CODES.get(exc.status, "http_error")
    headers = None
    if isinstance(exc, web.HTTPMethodNotAllowed):  # RFC 9110: a 405 names what is allowed
        headers = {"Allow": ", ".join(sorted(exc.allowed_methods))}
    return RoutingError(code, exc.status, exc.reason, headers=headers)


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wrap a handler: ids and table headers on every response, errors as JSON, one log line."""
    rt = request.app[RUNTIME]
    served = rt.served
    rid = _request_id(request)
    rec: dict[str, Any] = {"request_id": rid, "method": request.method, "path": request.path}
    request[SERVED] = served
    request[REQUEST_ID] = rid
    request[RECORD] = rec
    started = request[STARTED] = time.perf_counter()
    info = request.match_info.route.resource
    route = info.canonical if info is not None else "unmatched"
    # the client format of the route: errors answer in its shape (OpenAI chat when unregistered)
    fmt = request.app[FORMATS].get(route, OPENAI_CHAT)
    resp: web.StreamResponse | None = None
    try:
        try:
            resp = await handler(request)
        except RoutingError as exc:
            resp = error_response(exc, fmt)
            rec["error"] = exc.code
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            err = _http_error(exc, rt.max_body_bytes)
            resp = error_response(err, fmt)
            rec["error"] = err.code
        except ConnectionResetError:  # the client left: not a bug (CancelledError is no Exception)
            raise
        except Exception:
            # a bug, not the client's fault: still the SPEC's error shape and headers, and the
            # traceback in the log (never the request body or a key)
            _log.exception(
                "unhandled error in %s %s (request %s)", request.method, request.path, rid
            )
            err = RoutingError("internal_error", 500, "Internal error")
            resp = error_response(err, fmt)
            rec["error"] = "internal_error"
        if not resp.prepared:
            headers = resp.headers
            headers["x-routectl-table"] = served.sha
            headers["x-request-id"] = rid
            if fmt.id_header is not None:
                headers[fmt.id_header] = rid
            extra = request.get(ANSWER_HEADERS)
            if extra:
                headers.update(extra)
        return resp
    except (asyncio.CancelledError, ConnectionResetError):
        rec["status"] = 499  # the client went away
        raise
    finally:
        status = rec.get("status") or (resp.status if resp is not None else 500)
        rec["status"] = status
        rt.metrics.count_request(route, rec.get("selected_model") or "", status)
        log = rt.access_log
        observers = rt.observers  # usage figures, the request_logs sink: after the log line
        if log.enabled or observers:
            rec["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            rec["table"] = served.sha
            rec["ts"] = round(time.time(), 3)
            if log.enabled:
                log.write(rec)
            try:
                for observe in observers:
                    observe(rec)
            except Exception:  # a bug there must cost the figures, never the answer
                _log.exception("a request observer failed (request %s)", rid)
