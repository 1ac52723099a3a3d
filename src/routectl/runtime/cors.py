"""CORS for browser clients (`serve --cors-origin ORIGIN`, repeatable; off by default).

A page on another origin (a chat UI, a notebook, the openai or Vercel AI SDK in a browser)
sends a preflight `OPTIONS` before any request that carries `Authorization` or JSON. With an
allowed `Origin` the preflight is answered 204 before authentication (it carries no key) with
the methods and the request headers asked for, when each is one a client of routectl sends:
`authorization`, `content-type`, `x-api-key`, `x-request-id`, `openai-*`, `anthropic-*` and the
SDKs' `x-stainless-*`. Every answer to an allowed origin, errors and streams included, carries
`Access-Control-Allow-Origin` and exposes routectl's headers (`x-request-id`, `x-should-retry`,
`retry-after`, `x-routectl-*`...), so the SDKs' retry logic works in a browser too. `*` allows
any origin. Credentials (cookies) are never allowed: routectl authenticates by key.

It is mounted on the app by the serve command (a `Mount`), so an app built without it has no
CORS at all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from aiohttp import web
from aiohttp.typedefs import Handler

__all__ = ["ALLOWED_HEADERS", "EXPOSED_HEADERS", "cors_mount"]

ANY = "*"
_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = frozenset(
    (
        "authorization",
        "content-type",
        "x-api-key",
        "x-request-id",
        "accept",
        "cache-control",
    )
)
_ALLOWED_PREFIXES = ("x-stainless-", "openai-", "anthropic-")
EXPOSED_HEADERS = ", ".join(
    (
        "x-request-id",
        "request-id",
        "x-should-retry",
        "retry-after",
        "x-routectl-table",
        "x-routectl-selected-model",
        "x-routectl-connection",
        "x-routectl-token-count",
    )
)
_MAX_AGE = "600"  # browsers cache a preflight for up to 10 minutes (Chromium's own cap is 2 h)


def _header_allowed(name: str) -> bool:
    return name in ALLOWED_HEADERS or name.startswith(_ALLOWED_PREFIXES)


def _allowed_origin(origins: frozenset[str], origin: str | None) -> str | None:
    """The value of Access-Control-Allow-Origin for this request's Origin, or None."""
    if not origin:
        return None
    if origin in origins:
        return origin
    return ANY if ANY in origins else None


def cors_mount(origins: Sequence[str]) -> Callable[[web.Application], None]:
    """What `serve --cors-origin` mounts on the app: the preflight answer, outside every other
    middleware, and the CORS headers on every answer to an allowed origin."""
    allowed_origins = frozenset(origins)

    @web.middleware
    async def preflight(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
            return await handler(request)
        allow = _allowed_origin(allowed_origins, request.headers.get("Origin"))
        if allow is None:
            return await handler(request)  # not a CORS client of ours: routing answers it
        asked = request.headers.get("Access-Control-Request-Headers", "")
        names = [h.strip().lower() for h in asked.split(",") if h.strip()]
        headers = {
            "Access-Control-Allow-Origin": allow,
            "Access-Control-Allow-Methods": _METHODS,
            "Access-Control-Max-Age": _MAX_AGE,
            "Vary": "Origin, Access-Control-Request-Headers",
        }
        allowed = [h for h in names if _header_allowed(h)]
        if allowed:
            headers["Access-Control-Allow-Headers"] = ", ".join(allowed)
        return web.Response(status=204, headers=headers)

    async def answer_headers(request: web.Request, response: web.StreamResponse) -> None:
        allow = _allowed_origin(allowed_origins, request.headers.get("Origin"))
        if allow is None or "Access-Control-Allow-Origin" in response.headers:
            return
        response.headers["Access-Control-Allow-Origin"] = allow
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        response.headers.add("Vary", "Origin")

    def mount(app: web.Application) -> None:
        app.middlewares.insert(0, preflight)
        app.on_response_prepare.append(answer_headers)

    return mount
