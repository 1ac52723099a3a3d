"""Thin aiohttp handlers: authenticate, parse, call the pure core, answer."""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from routectl.runtime.access import visible_collections
from routectl.runtime.affinity import affinity_facts
from routectl.runtime.auth import Caller, authenticate
from routectl.runtime.errors import RoutingError
from routectl.runtime.ingress.anthropic_messages import (
    parse_count_request,
    parse_messages_request,
)
from routectl.runtime.ingress.openai_chat import parse_chat_request
from routectl.runtime.ingress.openai_embeddings import parse_embeddings_request
from routectl.runtime.ingress.openai_responses import parse_responses_request
from routectl.runtime.keys import ANSWER_HEADERS, RECORD, REQUEST_ID, RUNTIME, RUNTIME_OF, SERVED
from routectl.runtime.kinds import require_kind
from routectl.runtime.limits.limiter import RouteRules
from routectl.runtime.limits.usage import watch_usage
from routectl.runtime.metrics_access import check_metrics_token, public_values, public_view
from routectl.runtime.plan import plan_request
from routectl.runtime.record import note_route
from routectl.runtime.request import Call
from routectl.runtime.request_body import buffered_body
from routectl.runtime.resolve import resolve, route_for
from routectl.runtime.routes import Route
from routectl.runtime.served import Runtime, ServedTable
from routectl.runtime.tokens import count_tokens
from routectl.runtime.translatable import translatable
from routectl.runtime.upstream import forward
from routectl.runtime.views import (
    anthropic_model,
    anthropic_models_page,
    collection_detail,
    collection_summary,
    models_list,
)

__all__ = [
    "caller_of",
    "chat_completions",
    "count_message_tokens",
    "embeddings",
    "get_collection",
    "get_model",
    "healthz",
    "list_collections",
    "list_models",
    "managed_as_code",
    "messages",
    "metrics",
    "read_body",
    "readyz",
    "responses",
]


def _json(data: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def read_body(request: web.Request) -> bytes:
    """The request body; one that cannot be read (a Content-Encoding that does not decode) is a
    400 invalid_request, not a 500."""
    body = buffered_body(request)  # all there in one piece: without read()'s calls
    if body is not None:
        return body
    try:
        return await request.read()
    except RequestPayloadError as exc:
        raise _unreadable(exc) from None


def _unreadable(exc: RequestPayloadError) -> RoutingError:
    return RoutingError("invalid_request", 400, f"request body could not be read: {exc}")


def caller_of(request: web.Request) -> Caller:
    """The authenticated caller of a request (401 invalid_api_key otherwise); logs its handle.

    The key is a bearer token, or, without one, `x-api-key` (what Anthropic's SDKs and agents
    send): the same digests either way."""
    headers = request._headers  # the reified `headers` property's attribute (see front.py)
    scheme, _, key = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        key = headers.get("x-api-key", "")
    state = request._state  # the dict itself: see runtime/envelope.py
    index = state[SERVED].index
    key = key.strip()
    # authenticate's remembered keys read inline (a frame less for a key seen before)
    caller = index.callers_by_key.get(key) or authenticate(index, key)
    if caller is None:
        raise RoutingError("invalid_api_key", 401, "Missing or invalid API key")
    state[RECORD]["caller"] = caller.handle
    return caller


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    caller = caller_of(request)
    # read_body inline: one coroutine frame less on the hottest route
    raw = buffered_body(request)
    if raw is None:
        try:
            raw = await request.read()
        except RequestPayloadError as exc:
            raise _unreadable(exc) from None
    return await _routed(request, caller, parse_chat_request(raw))


async def embeddings(request: web.Request) -> web.StreamResponse:
    """POST /v1/embeddings: routed like chat, to models of kind `embedding`."""
    caller = caller_of(request)
    return await _routed(request, caller, parse_embeddings_request(await read_body(request)))


async def responses(request: web.Request) -> web.StreamResponse:
    """POST /v1/responses: the Responses API, stateless, routed like chat."""
    caller = caller_of(request)
    created = int(request.app[RUNTIME].state.clock())
    call = parse_responses_request(await read_body(request), request[REQUEST_ID], created)
    return await _routed(request, caller, call)


async def messages(request: web.Request) -> web.StreamResponse:
    """POST /v1/messages: Anthropic Messages, routed like chat."""
    caller = caller_of(request)
    call = parse_messages_request(await read_body(request), request.headers)
    return await _routed(request, caller, call)


def _routed(
    request: web.Request, caller: Caller, call: Call
) -> Coroutine[Any, Any, web.StreamResponse]:
    # returns the coroutine to await (no frame of its own): without limits a request's path is
    # as short as before them
    state = request._state
    served: ServedTable = state[SERVED]
    rec = state[RECORD]
    rec["requested_model"] = "load_balancer" if call.load_balancer is not None else call.model
    rec["stream"] = call.stream
    route: Route | None = None
    key = None
    if call.load_balancer is None and call.overrides is None:
        # a name this caller sent before: the route, its record notes and the kind check it
        # passed, remembered (resolve, note_route and require_kind are five frames otherwise)
        key = (caller.handle, caller.owners, call.model, call.format.name)
        found = served.index.routed.get(key)
        if found is not None:
            route, notes = found
            rec.update(notes)
    if route is None:
        route = _route(served, caller, call, rec, key)
    if not served.limited:
        return _planned(request, caller, call, route)
    rules = state[RUNTIME_OF].limiter.rules_for(served.table, caller, route)
    if rules is None:
        return _planned(request, caller, call, route)
    return _limited(request, caller, call, route, rules)


def _route(
    served: ServedTable,
    caller: Caller,
    call: Call,
    rec: dict[str, Any],
    key: tuple[str, frozenset[str], str, str] | None,
) -> Route:
    """The request's route (403/404/400 raised as RoutingError), noted in its record; remembered
    under `key` when there is one (a plain request's)."""
    index = served.index
    route, rule = route_for(index, caller, call.model, call.load_balancer, call.overrides)
    notes: dict[str, Any] = {}
    note_route(notes, caller, route, rule)
    rec.update(notes)  # the same keys in the same order as note_route(rec, ...) would add them
    require_kind(route, call.format.name)
    if key is not None:
        index.remember_routed(key, route, notes)
    return route


async def _limited(
    request: web.Request, caller: Caller, call: Call, route: Route, rules: RouteRules
) -> web.StreamResponse:
    """routing.yaml's limits before anything else (a refused request, 429, moves no cursor), the
    x-ratelimit headers on the answer, the settlement from its usage after it."""
    limiter = request._state[RUNTIME_OF].limiter
    ticket = await limiter.admit(rules, call.facts)
    if ticket is None:  # the backend could not answer and the limits fail open
        return await _planned(request, caller, call, route)
    request._state[ANSWER_HEADERS] = ticket.headers
    if ticket.settling:  # tokens or spend: the stream's usage is needed for the settlement
        call = watch_usage(call)
    failed = True
    try:
        resp = await _planned(request, caller, call, route)
        failed = resp.status >= 400
        return resp
    finally:
        limiter.settle(ticket, request._state[RECORD], failed)


def _planned(
    request: web.Request, caller: Caller, call: Call, route: Route
) -> Coroutine[Any, Any, web.StreamResponse]:
    # plans now and returns the forwarder's coroutine to await (no frame of its own between the
    # handler and the upstream call, each time the request resumes)
    state = request._state
    rt: Runtime = state[RUNTIME_OF]
    served: ServedTable = state[SERVED]
    facts = call.facts
    coll = route.collection
    if coll is not None and coll.affinity is not None:  # affinity_facts' own test, inline
        facts = affinity_facts(route, facts, request.headers, caller.handle, call.body)
    plan = plan_request(served.index, rt.state, caller, route, facts)
    if not plan.candidates:
        raise plan.error()
    plan = translatable(plan, call, served)
    return forward(request, rt, served, plan, call, state[REQUEST_ID], state[RECORD])


async def count_message_tokens(request: web.Request) -> web.StreamResponse:
    """POST /v1/messages/count_tokens: the upstream's count for an Anthropic member, else the
    gateway's estimate (`x-routectl-token-count` says which)."""
    rt = request.app[RUNTIME]
    served = request[SERVED]
    caller = caller_of(request)
    call = parse_count_request(await read_body(request), request.headers)
    request[RECORD]["requested_model"] = (
        "load_balancer" if call.load_balancer is not None else call.model
    )
    route = route_for(served.index, caller, call.model, call.load_balancer, call.overrides).route
    # a peek: counting tokens moves no cursor and no counter
    plan = plan_request(served.index, rt.state, caller, route, call.facts, commit=False)
    return await count_tokens(rt, served, plan, call, request[REQUEST_ID])


async def list_models(request: web.Request) -> web.StreamResponse:
    """GET /v1/models (cached per caller and table); in Anthropic's paged list format when the
    request carries `anthropic-version`, as Anthropic's SDKs send it."""
    served = request[SERVED]
    caller = caller_of(request)
    if "anthropic-version" in request.headers:
        return _json(anthropic_models_page(served.index, caller, request.query))
    body = served.models_bodies.get(caller.handle)
    if body is None:
        listed = models_list(served.index, caller, int(served.loaded_at))
        body = served.models_bodies[caller.handle] = orjson.dumps(listed)
    return web.Response(body=body, content_type="application/json")


async def get_model(request: web.Request) -> web.StreamResponse:
    """GET /v1/models/{id}: one name of the caller's models list (OpenAI's `Model`, or
    Anthropic's `ModelInfo` with `anthropic-version`); the id may carry `/` plain or as %2F."""
    served = request[SERVED]
    caller = caller_of(request)
    ident = request.match_info["id"]
    entry = next(
        (
            m
            for m in models_list(served.index, caller, int(served.loaded_at))["data"]
            if m["id"] == ident
        ),
        None,
    )
    if entry is None:
        raise RoutingError(
            "model_not_found",
            404,
            f"The model '{ident}' does not exist or you do not have access to it",
            param="model",
        )
    if "anthropic-version" in request.headers:
        return _json(anthropic_model(served.index, ident))
    return _json(entry)


async def list_collections(request: web.Request) -> web.StreamResponse:
    """GET /api/user/model-collections."""
    served = request[SERVED]
    caller = caller_of(request)
    found = visible_collections(served.table, caller)
    return _json({"collections": [collection_summary(c) for c in found], "total": len(found)})


async def get_collection(request: web.Request) -> web.StreamResponse:
    """GET /api/user/model-collections/{name}: members with live usage and health."""
    rt = request.app[RUNTIME]
    served = request[SERVED]
    caller = caller_of(request)
    name = request.match_info["name"]
    if name.startswith("collection/"):
        name = name[11:]
    # the same scope rules as routing
    route = resolve(served.index, caller, f"collection/{name}").route
    assert route.collection is not None
    detail = collection_detail(served.index, rt.state, caller, route.collection, rt.state.clock())
    return _json(detail)


async def managed_as_code(request: web.Request) -> web.StreamResponse:
    """Writes to collections: 405, routing changes go through routing.yaml."""
    raise RoutingError(
        "managed_as_code",
        405,
        "Collections are managed as code: change routing.yaml and deploy the compiled table",
        headers={"Allow": "GET"},
    )


async def healthz(request: web.Request) -> web.StreamResponse:
    """Liveness."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Readiness: a verified table is loaded, the upstream session is open, and the process is
    not stopping; `reload` tells how the last reload (SIGHUP, --watch) went."""
    rt = request.app[RUNTIME]
    ready = rt.session is not None and not rt.session.closed
    status = "draining" if rt.draining else "ready" if ready else "starting"
    body: dict[str, object] = {"status": status, "table": rt.served.sha}
    if rt.last_reload is not None:
        body["reload"] = rt.last_reload
    return _json(body, 200 if status == "ready" else 503)


async def metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text format: every series with the metrics token, else the public ones
    (runtime/metrics_access.py)."""
    rt = request.app[RUNTIME]
    full = check_metrics_token(rt.metrics_token, request.headers.get("Authorization", ""))
    body = rt.metrics.render()
    if not full:
        body = public_view(body, public_values(request[SERVED].table))
    return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4"})
