"""`POST /v1/route/explain`: explain a chat request body against the live table and state.

Mounted on the runtime's app by whoever composes the server (`mount_explain`, passed to
`create_app(mounts=...)` by the serve command); the runtime itself never imports the review tools.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from routectl.review.explain import explain_request
from routectl.runtime.errors import RoutingError
from routectl.runtime.handlers import caller_of, read_body
from routectl.runtime.keys import RUNTIME, SERVED
from routectl.runtime.openapi import OPENAPI, answers, json_body, operation

__all__ = ["mount_explain", "route_explain"]


async def route_explain(request: web.Request) -> web.StreamResponse:
    """Answer what `POST /v1/chat/completions` would do with this body, calling no provider."""
    rt = request.app[RUNTIME]
    served = request[SERVED]
    # the chat handler's own authentication, so explain sees exactly the caller a request would
    caller = caller_of(request)
    try:
        body: Any = orjson.loads(await read_body(request))
    except orjson.JSONDecodeError as exc:
        raise RoutingError(
            "invalid_request", 400, f"request body is not valid JSON: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise RoutingError("invalid_request", 400, "request body must be a JSON object")
    data = explain_request(served.index, rt.state, caller, body)
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def mount_explain(app: web.Application) -> None:
    """Add `POST /v1/route/explain` to a runtime app."""
    app.router.add_post("/v1/route/explain", route_explain)
    app[OPENAPI].add(
        "/v1/route/explain",
        "post",
        operation(
            "What /v1/chat/completions would do with this body; calls no provider",
            answers(
                {"type": "object", "additionalProperties": True},
                (400, 401, 403, 404, 413),
            ),
            # any object: explain reports what is wrong with a request instead of refusing it
            body=json_body({"type": "object", "additionalProperties": True}),
            tags=("review",),
        ),
    )
