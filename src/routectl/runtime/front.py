"""The front: routectl's own dispatch on aiohttp's low-level server.

`web.Application` resolves every request through its router (a walk over path prefixes, a new
match info, frozen) and wraps the handler in its middlewares per request; for a proxy whose hot
paths are three fixed `POST` paths that was the largest share of the server side after aiohttp's
HTTP parsing (docs/performance.md, issue 16). Here the app stays what it is good for (typed
keys, cleanup contexts, the routes as registered, which `/openapi.json` and mounts use), and the
connection is served by aiohttp's low-level `web.Server` calling `Front`: a dict of (method, path)
-> handler for the plain routes, built once, with a match info shared by every request of the
route; anything else (the parameterised routes such as `/v1/models/{id}`, 404 and 405) goes
through the app's router as before, so those answers do not change. Then one envelope
(runtime/envelope.py).

Middlewares a mount or a test adds to the app (CORS preflight, answer recorders) still run, outside
the envelope as before; the app `create_app` builds has none, so a request pays for none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from functools import partial
from typing import Any

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from aiohttp.web_urldispatcher import PlainResource, UrlMappingMatchInfo

from routectl.runtime.envelope import envelope
from routectl.runtime.ingress import ClientFormat
from routectl.runtime.ingress.openai_chat import OPENAI_CHAT
from routectl.runtime.keys import CONNECTIONS, FORMATS, RUNTIME

__all__ = ["Front", "FrontRunner", "served_by_front"]


@web.middleware
async def served_by_front(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On a runtime app, in place of the envelope when it is served by a plain AppRunner: the
    envelope (ids, error shapes, limits, the access log) runs only in the front, so an app served
    without it must fail loudly rather than answer without them."""
    raise RuntimeError("a routectl runtime app is served by runtime.front.FrontRunner")


class _Entry:
    """What the dispatch found for a request: the handler, its match info, the route as the
    metrics and error formats name it."""

    __slots__ = ("fmt", "handler", "match_info", "route")

    def __init__(self, match_info: UrlMappingMatchInfo, fmt: ClientFormat, route: str) -> None:
        self.match_info = match_info
        self.handler = match_info.handler
        self.fmt = fmt
        self.route = route


class Front:
    """The request handler of aiohttp's low-level server for one runtime app."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runtime = app[RUNTIME]
        self.connections = app[CONNECTIONS]
        self.formats = app[FORMATS]
        self.plain = self._plain_routes(app)
        # what mounts and tests add, outermost first; the app's own guard is not one of them
        self.outer = [m for m in app.middlewares if m is not served_by_front]

    def _plain_routes(self, app: web.Application) -> dict[tuple[str, str], _Entry]:
        plain: dict[tuple[str, str], _Entry] = {}
        anything: set[str] = set()  # paths with a catch-all method: left to the router
        for resource in app.router.resources():
            if not isinstance(resource, PlainResource):
                continue
            path = resource.canonical
            for route in resource:
                if route.method == hdrs.METH_ANY:
                    anything.add(path)
                    continue
                info = UrlMappingMatchInfo({}, route)
                info.add_app(app)
                info.freeze()  # shared by every request of the route: nothing may change it
                # the router answers with the first resource registered for a path: so does this
                plain.setdefault((route.method, path), _Entry(info, self._format(path), path))
        return {key: entry for key, entry in plain.items() if key[1] not in anything}

    def _format(self, route: str) -> ClientFormat:
        # the client format of the route: errors answer in its shape (OpenAI chat when unregistered)
        return self.formats.get(route, OPENAI_CHAT)

    async def _resolve(self, request: web.Request) -> _Entry:
        """Through the app's router: parameterised routes, 404 and 405 (with `Allow`)."""
        info = await self.app.router.resolve(request)
        info.add_app(self.app)
        info.freeze()
        resource = info.route.resource
        route = resource.canonical if resource is not None else "unmatched"
        return _Entry(info, self._format(route), route)

    def __call__(self, base: web.BaseRequest) -> Coroutine[Any, Any, web.StreamResponse]:
        # the app's request factory makes web.Requests (an annotation, not typing.cast: that is
        # a Python-level call per request)
        request: web.Request = base  # type: ignore[assignment]
        # the attributes behind `method`, `rel_url` and `headers`: each of those is a reified
        # property whose first read is a Python-level call (and the envelope and handlers read
        # the same attributes, so no one pays it later)
        entry = self.plain.get((request._method, request._rel_url.path_safe))
        if entry is None or self.outer or request._headers.get(hdrs.EXPECT):
            return self._dispatch(request, entry)
        # what web.Application does: request.app and request.match_info read it
        request._match_info = entry.match_info
        # the envelope's coroutine itself, not awaited here: one frame less for the event loop
        # to step through each time the request resumes (its body, the upstream's answer);
        # `_enveloped`, inline
        return envelope(
            request, entry.handler, entry.route, entry.fmt, self.runtime, self.connections
        )

    async def _dispatch(self, request: web.Request, entry: _Entry | None) -> web.StreamResponse:
        """The rest: routes the dict does not hold, `Expect`, and middlewares of mounts or tests."""
        if entry is None:
            entry = await self._resolve(request)
        request._match_info = entry.match_info
        if request.headers.get(hdrs.EXPECT):  # 100-continue: before the body is read
            expected = await entry.match_info.expect_handler(request)
            await request.writer.drain()
            if expected is not None:
                return expected
        if self.outer:
            return await self._through_middlewares(request, entry)
        return await self._enveloped(request, entry)

    def _enveloped(
        self, request: web.Request, entry: _Entry
    ) -> Coroutine[Any, Any, web.StreamResponse]:
        """The envelope around the entry's handler (`__call__` writes this call inline)."""
        return envelope(
            request, entry.handler, entry.route, entry.fmt, self.runtime, self.connections
        )

    async def _through_middlewares(self, request: web.Request, entry: _Entry) -> web.StreamResponse:
        async def inner(request: web.Request) -> web.StreamResponse:
            return await self._enveloped(request, entry)

        handler: Handler = inner
        for middleware in reversed(self.outer):
            handler = partial(middleware, handler=handler)
        return await handler(request)


class FrontRunner(web.AppRunner):
    """An AppRunner whose server calls the app's `Front`: the app's startup and cleanup as usual
    (its cleanup contexts open and close the upstream client), aiohttp's low-level server."""

    __slots__ = ()

    async def _make_server(self) -> web.Server:
        loop = asyncio.get_running_loop()
        app = self.app
        # what AppRunner does before it asks the app for aiohttp's own dispatching server
        app._set_loop(loop)
        app.on_startup.freeze()
        await app.startup()
        app.freeze()
        return web.Server(Front(app), request_factory=app._make_request, loop=loop, **self._kwargs)
