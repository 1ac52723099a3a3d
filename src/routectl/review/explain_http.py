"""`POST /v1/route/explain`: explain a chat request body against the live table and state."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from routectl.review.explain import explain_request
from routectl.runtime.handlers import LOADED, caller_of, read_body
from routectl.runtime.keys import RUNTIME
from routectl.runtime.resolve import RoutingError
from routectl.runtime.service import Loaded

__all__ = ["route_explain"]


async def route_explain(request: web.Request) -> web.StreamResponse:
    """Answer what `POST /v1/chat/completions` would do with this body, calling no provider."""
    rt = request.app[RUNTIME]
    loaded: Loaded = request[LOADED]
    # the chat handler's own authentication, so explain sees exactly the caller a request would
    caller = caller_of(request, loaded)
    try:
        body: Any = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError as exc:
        raise RoutingError(
            "invalid_request", 400, f"request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise RoutingError("invalid_request", 400, "request body must be a JSON object")
    data = explain_request(loaded.table, rt.state, caller, body)
    return web.Response(body=orjson.dumps(data), content_type="application/json")
