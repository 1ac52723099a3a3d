"""Measurement only, never shipped: aiohttp's per-request task replaced by awaiting the handler.

aiohttp 3.14 on CPython 3.11 runs each request's handler in a task of its own
(`loop.create_task(self._handle_request(...))` in `RequestHandler.start`, "to copy context vars"):
two more turns of the event loop and a task registration per request. With this folder first on
PYTHONPATH, Python imports this module at startup and rewrites that one statement into
`await coro` (the runtime's runtime/inline_start.py without its loop turn); what a request
then costs, against the unpatched server, is the figure in
docs/performance.md (issue 16, phase 3):

    PYTHONPATH=bench/experiments/no_request_task PYTHONHASHSEED=0 \\
        .venv/bin/python bench/profile_stages.py --skip-stages --only "routectl, lean"

When the pattern is not found (another aiohttp or Python), it says so and changes nothing.
"""

from __future__ import annotations

import sys

from aiohttp import web_protocol

from routectl.runtime.inline_start import inline_start

_start = inline_start(yield_first=False)  # the runtime's own rewrite, without its loop turn
if _start is not None:
    # on aiohttp's class: the runtime's protocol class, made after this runs, finds no statement
    # to rewrite in it (its source is no longer aiohttp's file) and takes it as it is
    web_protocol.RequestHandler.start = _start  # type: ignore[method-assign,assignment]
else:
    print(
        "no_request_task: aiohttp's RequestHandler.start differs; nothing patched", file=sys.stderr
    )
