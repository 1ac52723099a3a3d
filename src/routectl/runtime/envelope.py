"""The envelope around every request: request id, table snapshot, body limit, connection phase,
error shape, headers, metrics, access log and the request observers.

One coroutine, called by the front's dispatch (runtime/front.py) with the route it found: before
issue 16 this was two aiohttp middlewares (`envelope`, then `track`) wrapped around the handler
per request by `web.Application`; one function does both for a fraction of the instructions.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress import ClientFormat
from routectl.runtime.ingress.openai_chat import OPENAI_CHAT
from routectl.runtime.keys import (
    ANSWER_HEADERS,
    RECORD,
    REQUEST_ID,
    RUNTIME_OF,
    SERVED,
    STARTED,
)
from routectl.runtime.retry import retry_headers

if TYPE_CHECKING:
    from routectl.runtime.connections import Connections
    from routectl.runtime.served import Runtime

__all__ = ["envelope", "error_response"]

_log = logging.getLogger("routectl.runtime")

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


class _RequestIds:
    """Unique ids without a getrandom() call per request: a random per-process prefix and a counter
    (24 hex characters: `f"{prefix}{next(counter):012x}"`, written inline by the envelope)."""

    def __init__(self) -> None:
        self._reset()
        # a forked worker must not repeat its parent's ids (and checking getpid() per request
        # would be a system call each time)
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self.prefix = os.urandom(6).hex()
        self.counter = itertools.count(1)


_ids = _RequestIds()


def error_response(error: RoutingError, fmt: ClientFormat = OPENAI_CHAT) -> web.Response:
    """A RoutingError in the shape of the client's format (the route's; OpenAI's by default),
    with `x-should-retry` (and the error's own headers, `Retry-After` among them)."""
    return web.Response(
        body=orjson.dumps(fmt.error_body(error)),
        status=error.status,
        content_type="application/json",
        headers=retry_headers(error),
    )


def _too_large(max_body: int) -> RoutingError:
    return RoutingError("request_too_large", 413, f"Request body is larger than {max_body} bytes")


def _http_error(exc: web.HTTPException, max_body: int) -> RoutingError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return _too_large(max_body)
    code = _HTTP_CODES.get(exc.status, "http_error")
    headers = None
    if isinstance(exc, web.HTTPMethodNotAllowed):  # RFC 9110: a 405 names what is allowed
        headers = {"Allow": ", ".join(sorted(exc.allowed_methods))}
    return RoutingError(code, exc.status, exc.reason, headers=headers)


async def envelope(
    request: web.Request,
    handler: Handler,
    route: str,
    fmt: ClientFormat,
    rt: Runtime,
    conns: Connections,
) -> web.StreamResponse:
    """Run `handler` (matched as `route`, whose errors answer in `fmt`): ids and table headers on
    every response, errors as JSON, the connection's phases, one log line."""
    served = rt.served
    # the client's request id when it is a sane one, else ours (inline: each Python-level call
    # costs about a thousand instructions or more)
    # `request._headers`, `_method` and `_rel_url.path`: what the reified properties read (a
    # Python-level call the first time each is read)
    headers = request._headers
    rid = headers.get("x-request-id")
    if not (rid and len(rid) <= 128 and rid.isascii() and rid.isprintable()):
        rid = f"{_ids.prefix}{next(_ids.counter):012x}"
    rec: dict[str, Any] = {
        "request_id": rid,
        "method": request._method,
        "path": request._rel_url.path,
    }
    # the request's own dict, not `request[KEY]`: each of those is a Python-level call
    # (MutableMapping), and a `.get` of a missing key raises and catches KeyError inside
    state = request._state
    state[SERVED] = served
    state[RUNTIME_OF] = rt
    state[REQUEST_ID] = rid
    state[RECORD] = rec
    started = state[STARTED] = time.perf_counter()
    resp: web.StreamResponse | None = None
    try:
        try:
            # request.content_length's own work (a property: a Python-level call), inline
            length = headers.get(hdrs.CONTENT_LENGTH)
            if length is not None and int(length) > rt.max_body_bytes:
                # refused before a byte of the body is read (aiohttp would read up to the limit)
                raise _too_large(rt.max_body_bytes)
            guard = conns.begin(request)
            try:
                resp = await handler(request)
                if rt.draining and not resp.prepared:
                    resp.force_close()  # the client reconnects, to a replica that is not stopping
            finally:
                conns.end(guard)
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
        # `resp.prepared` and `resp.headers` read without their properties' frames
        if resp._payload_writer is None and not resp._eof_sent:
            answer_headers = resp._headers
            answer_headers["x-routectl-table"] = served.sha
            answer_headers["x-request-id"] = rid
            if fmt.id_header is not None:
                answer_headers[fmt.id_header] = rid
            extra = state.get(ANSWER_HEADERS)
            if extra:
                answer_headers.update(extra)
        return resp
    except (asyncio.CancelledError, ConnectionResetError):
        rec["status"] = 499  # the client went away
        raise
    finally:
        # `resp._status`: what the `status` property reads, without its frame
        status = rec.get("status") or (resp._status if resp is not None else 500)
        rec["status"] = status
        rt.metrics.count_request(route, rec.get("selected_model") or "", status)
        log = rt.access_log
        observers = rt.observers  # usage figures, the request_logs sink: after the log line
        # with a descriptor the log is on: `enabled` (a property, so a call) only without one
        logged = log.fd is not None or log.enabled
        if logged or observers:
            rec["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            rec["table"] = served.sha
            rec["ts"] = round(time.time(), 3)
            if logged:
                log.write(rec)
            try:
                for observe in observers:
                    observe(rec)
            except Exception:  # a bug there must cost the figures, never the answer
                _log.exception("a request observer failed (request %s)", rid)
