"""create_app: the aiohttp application serving one routing table."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path

from aiohttp import web

from routectl.runtime import dashboard, handlers
from routectl.runtime.accesslog import AccessLog
from routectl.runtime.connections import Connections
from routectl.runtime.front import served_by_front
from routectl.runtime.ingress.anthropic_messages import ANTHROPIC_MESSAGES
from routectl.runtime.keys import CONNECTIONS, FORMATS, RUNTIME
from routectl.runtime.limits import Limiter, LimitSettings, backend_for
from routectl.runtime.metrics import Metrics
from routectl.runtime.openapi import OPENAPI, OpenAPI, describe_runtime, serve_openapi
from routectl.runtime.options import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_UPSTREAM_CONNECTIONS,
)
from routectl.runtime.served import Runtime
from routectl.runtime.state import Clock, RoutingState
from routectl.runtime.upstream_client import open_upstream_client
from routectl.table import RoutingTable

__all__ = ["Mount", "create_app"]

_COLLECTIONS = "/api/user/model-collections"
# Anthropic's SDKs append /v1/messages to their base_url; the seed documents hand them the
# OpenAI-style base_url that ends in /v1, so the Messages routes answer under /v1/v1 as well
_ANTHROPIC_PREFIXES = ("", "/v1")

# Adds routes to the app before it starts: how whoever composes the server (the serve command)
# mounts endpoints of higher layers, e.g. the review tools' `POST /v1/route/explain`, without the
# runtime importing them.
Mount = Callable[[web.Application], None]


def create_app(
    table: RoutingTable,
    *,
    rng: random.Random | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    table_path: str | Path | None = None,
    connection_limit: int = DEFAULT_UPSTREAM_CONNECTIONS,
    access_log: AccessLog | None = None,
    mounts: Sequence[Mount] = (),
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    metrics_token: str | None = None,
    limits: LimitSettings | None = None,
    upstream_client: str = "lean",
) -> web.Application:
    """Build the app, to be served by `runtime.front.FrontRunner`; `rng`, `clock` and
    `environ` are injectable for tests.

    `access_log` defaults to the `routectl.access` logger; `routectl serve` passes a batched
    writer to stderr. `upstream_client`: see runtime/upstream_client.py.
    """
    state = RoutingState(clock=clock, rng=rng)
    runtime = Runtime(
        table,
        state=state,
        metrics=Metrics(),
        access_log=access_log,
        environ=environ,
        max_body_bytes=max_body_bytes,
        table_path=table_path,
        max_response_bytes=max_response_bytes,
        metrics_token=metrics_token,
    )
    # served by runtime.front.FrontRunner: its dispatch and envelope, no middleware of its own
    app = web.Application(middlewares=[served_by_front], client_max_size=max_body_bytes)
    app[RUNTIME] = runtime
    app[CONNECTIONS] = Connections(runtime.metrics.registry)
    app[FORMATS] = {}  # a route of another client format registers it (errors in its shape)
    settings = limits or LimitSettings()
    limiter = runtime.limiter = Limiter(
        backend_for(settings), runtime.metrics.registry, state.clock, settings.minute_s
    )

    async def upstream_session(app: web.Application) -> AsyncIterator[None]:
        # one keep-alive pool per app: connection reuse is most of a proxy's latency budget
        async with open_upstream_client(upstream_client, connection_limit) as session:
            runtime.session = session
            yield
            runtime.session = None
        await limiter.close()
        runtime.access_log.close()  # the lines still buffered, before the process exits

    app.cleanup_ctx.append(upstream_session)
    r = app.router
    r.add_post("/v1/chat/completions", handlers.chat_completions)
    r.add_post("/v1/embeddings", handlers.embeddings)
    r.add_post("/v1/responses", handlers.responses)
    r.add_get("/v1/models", handlers.list_models)
    r.add_get("/v1/models/{id:.+}", handlers.get_model)
    for prefix in _ANTHROPIC_PREFIXES:
        for path, handler in (
            ("/v1/messages", handlers.messages),
            ("/v1/messages/count_tokens", handlers.count_message_tokens),
        ):
            r.add_post(prefix + path, handler)
            app[FORMATS][prefix + path] = ANTHROPIC_MESSAGES
        if prefix:
            r.add_get(prefix + "/v1/models", handlers.list_models)
            r.add_get(prefix + "/v1/models/{id:.+}", handlers.get_model)
    r.add_get(_COLLECTIONS, handlers.list_collections)
    r.add_get(_COLLECTIONS + "/{name}", handlers.get_collection)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        r.add_route(method, _COLLECTIONS, handlers.managed_as_code)
        r.add_route(method, _COLLECTIONS + "/{tail:.+}", handlers.managed_as_code)
    r.add_get("/healthz", handlers.healthz)
    r.add_get("/readyz", handlers.readyz)
    r.add_get("/metrics", handlers.metrics)
    r.add_get("/dashboard", dashboard.dashboard_page)
    r.add_get("/dashboard/dashboard.js", dashboard.dashboard_script)
    r.add_get("/dashboard/data", dashboard.dashboard_data)
    app[OPENAPI] = OpenAPI()  # GET /openapi.json: every route above, and what mounts add
    describe_runtime(app[OPENAPI], _COLLECTIONS)
    r.add_get("/openapi.json", serve_openapi)
    for mount in mounts:
        mount(app)
    return app
