"""The rungs below a proxy, for bench/profile_stages.py: aiohttp servers that answer at once.

`lowlevel`: aiohttp's low-level `web.Server` (HTTP parser, request object, response writer);
`app`: a `web.Application` with a router and one route, no middleware. Both read the request body
and answer the fake upstream's constant completion, so that the difference to the passthrough is
the upstream client alone. NOT part of the product.
Usage: python bench/ladder_servers.py {lowlevel,app} --port 9003
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

ANSWER = (
    b'{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":'
    b'"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello from'
    b' the fake upstream."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,'
    b'"completion_tokens":6,"total_tokens":15}}'
)


async def answer(request: web.BaseRequest) -> web.Response:
    """Read the body, answer the constant completion."""
    await request.read()
    return web.Response(body=ANSWER, content_type="application/json")


async def serve(kind: str, host: str, port: int) -> None:
    """Serve until cancelled (SIGTERM/SIGINT end the loop)."""
    if kind == "lowlevel":
        runner: web.BaseRunner = web.ServerRunner(web.Server(answer), access_log=None)
    else:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", answer)
        app.router.add_get("/", answer)
        runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # exit normally: callgrind writes its file then
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["lowlevel", "app"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    runner(serve(args.kind, args.host, args.port))


if __name__ == "__main__":
    main()
