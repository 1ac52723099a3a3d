"""Thin aiohttp handlers: authenticate, parse, call the pure core, answer."""

from __future__ import annotations

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from routectl.runtime.keys import LOADED, RECORD, REQUEST_ID, RUNTIME
from routectl.runtime.plan import plan_request
from routectl.runtime.request import apply_overrides, parse_chat_request
from routectl.runtime.resolve import (
    Caller,
    RoutingError,
    authenticate,
    load_balancer_route,
    resolve,
    visible_collections,
)
from routectl.runtime.service import Loaded
from routectl.runtime.upstream import forward
from routectl.runtime.views import collection_detail, collection_summary, models_list

__all__ = [
    "LOADED",  # re-exported: the review tools' explain endpoint reads the request's table
    "caller_of",
    "chat_completions",
    "get_collection",
    "healthz",
    "list_collections",
    "list_models",
    "managed_as_code",
    "metrics",
    "read_body",
    "readyz",
]


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_body(request: web.Request) -> bytes:
    """The request body; one that cannot be read (a Content-Encoding that does not decode) is a
    400 invalid_request, not a 500."""
    try:
        return await request.read()
    except RequestPayloadError as exc:
        raise RoutingError(
            "invalid_request", 400, f"request body could not be read: {exc}"
        ) from None


def caller_of(request: web.Request, loaded: Loaded) -> Caller:
    """The authenticated caller of a request (401 invalid_api_key otherwise); logs its handle."""
    header = request.headers.get("Authorization", "")
    scheme, _, key = header.partition(" ")
    caller = authenticate(loaded.table, key.strip()) if scheme.lower() == "bearer" else None
    if caller is None:
        raise RoutingError("invalid_api_key", 401, "Missing or invalid API key")
    request[RECORD]["caller"] = caller.handle
    return caller


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    rt = request.app[RUNTIME]
    loaded: Loaded = request[LOADED]
    rec = request[RECORD]
    caller = caller_of(request, loaded)
    chat = parse_chat_request(await read_body(request))
    table = loaded.table
    if chat.load_balancer is not None:
        rec["requested_model"] = "load_balancer"
        route = load_balancer_route(table, caller, chat.load_balancer)
    else:
        rec["requested_model"] = chat.model
        route = resolve(table, caller, chat.model)
    route = apply_overrides(route, chat)
    plan = plan_request(table, rt.state, caller, route, chat.facts)
    if not plan.candidates:
        raise plan.error()
    return await forward(request, rt, loaded, plan, chat, request[REQUEST_ID], rec)


async def list_models(request: web.Request) -> web.StreamResponse:
    """GET /v1/models (cached per caller and table)."""
    loaded: Loaded = request[LOADED]
    caller = caller_of(request, loaded)
    body = loaded.models_payload.get(caller.handle)
    if body is None:
        body = loaded.models_payload[caller.handle] = orjson.dumps(
            models_list(loaded.index, caller)
        )
    return web.Response(body=body, content_type="application/json")


async def list_collections(request: web.Request) -> web.StreamResponse:
    """GET /api/user/model-collections."""
    loaded: Loaded = request[LOADED]
    caller = caller_of(request, loaded)
    found = visible_collections(loaded.table, caller)
    return _json({"collections": [collection_summary(c) for c in found], "total": len(found)})


async def get_collection(request: web.Request) -> web.StreamResponse:
    """GET /api/user/model-collections/{name}: members with live usage and health."""
    rt = request.app[RUNTIME]
    loaded: Loaded = request[LOADED]
    caller = caller_of(request, loaded)
    name = request.match_info["name"]
    if name.startswith("collection/"):
        name = name[11:]
    route = resolve(loaded.table, caller, f"collection/{name}")  # same scope rules as routing
    assert route.collection is not None
    detail = collection_detail(loaded.index, rt.state, caller, route.collection, rt.state.clock())
    return _json(detail)


async def managed_as_code(request: web.Request) -> web.StreamResponse:
    """Writes to collections: 405, routing changes go through routing.yaml."""
    raise RoutingError(
        "managed_as_code",
        405,
        "Collections are managed as code: change routing.yaml and deploy the compiled table",
    )


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Readiness: a verified table is loaded and the upstream session is open."""
    rt = request.app[RUNTIME]
    ready = rt.session is not None and not rt.session.closed
    return _json(
        {"status": "ready" if ready else "starting", "table": rt.loaded.sha},
        200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text format."""
    body = request.app[RUNTIME].metrics.render()
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})
