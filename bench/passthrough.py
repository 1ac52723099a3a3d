"""A bare aiohttp + uvloop passthrough: the physical limit for a Python proxy. NOT part of the product.

It forwards POST /v1/chat/completions to one upstream over a keep-alive pool and copies the answer
back (SSE chunk by chunk): no auth, no routing, no metrics, no logging. `--client` picks the
upstream client (bench/harness/clients.py): aiohttp's ClientSession (the default, the passthrough
of every earlier run), routectl's lean transport, or pyreqwest.
Usage: python bench/passthrough.py --port 9002 --upstream http://127.0.0.1:9001 [--api-key KEY]
       [--client aiohttp|lean|pyreqwest]
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from aiohttp import web
from harness.clients import CLIENTS, Post, open_client
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

POST: web.AppKey[Post] = web.AppKey("post")


def build_app(upstream: str, api_key: str, client: str = "aiohttp") -> web.Application:
    """The passthrough app: one handler, one upstream client."""
    url = URL(upstream.rstrip("/") + "/v1/chat/completions")
    # built once, read-only, as routectl builds a connection's headers at table load
    headers = CIMultiDictProxy(
        CIMultiDict({"Content-Type": "application/json", "Authorization": f"Bearer {api_key}"})
    )

    async def client_ctx(app: web.Application) -> AsyncIterator[None]:
        async with open_client(client, limit=0 if client == "aiohttp" else 1000) as post:
            app[POST] = post
            yield

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        stream = b'"stream":true' in body  # what pyreqwest's adapter needs to know up front
        up = await request.app[POST](url, body, headers, stream)
        try:
            ctype = up.headers.get("Content-Type", "application/json")
            if not ctype.startswith("text/event-stream"):
                return web.Response(body=await up.read(), status=up.status, content_type=ctype)
            resp = web.StreamResponse(status=up.status, headers={"Content-Type": ctype})
            await resp.prepare(request)
            chunk = await up.content.readany()
            while chunk:
                await resp.write(chunk)
                chunk = await up.content.readany()
            await resp.write_eof()
            return resp
        finally:
            up.release()

    app = web.Application()
    app.cleanup_ctx.append(client_ctx)
    app.router.add_post("/v1/chat/completions", forward)
    return app


def main() -> None:
    """Parse arguments and serve on uvloop when it is installed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--api-key", default="sk-bench")
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    args = parser.parse_args()
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    app = build_app(args.upstream, args.api_key, args.client)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
