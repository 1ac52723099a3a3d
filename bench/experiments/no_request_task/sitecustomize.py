"""Measurement only, never shipped: aiohttp's per-request task replaced by awaiting the handler.

aiohttp 3.14 on CPython 3.11 runs each request's handler in a task of its own
(`loop.create_task(self._handle_request(...))` in `RequestHandler.start`, "to copy context vars"):
two more turns of the event loop and a task registration per request. With this folder first on
PYTHONPATH, Python imports this module at startup and rewrites that one statement into
`await coro`; what a request then costs, against the unpatched server, is the figure in
docs/performance.md (issue 16, phase 3):

    PYTHONPATH=bench/experiments/no_request_task PYTHONHASHSEED=0 \\
        .venv/bin/python bench/profile_stages.py --skip-stages --only "routectl, lean"

When the pattern is not found (another aiohttp or Python), it says so and changes nothing.
"""

from __future__ import annotations

import inspect
import sys
import textwrap

import aiohttp.web_protocol as _wp

_OLD = """\
            if sys.version_info >= (3, 14):
                if isinstance(loop, BaseEventLoop):
                    task = asyncio.create_task(coro, eager_start=True)
                else:
                    task = asyncio.Task(coro, loop=loop, eager_start=True)
            elif sys.version_info >= (3, 12):
                task = asyncio.Task(coro, loop=loop, eager_start=True)
            else:
                task = loop.create_task(coro)
            try:
                resp, reset = await task"""
_NEW = """\
            task = None
            try:
                resp, reset = await coro"""

_source = textwrap.dedent(inspect.getsource(_wp.RequestHandler.start))
if _OLD in _source:
    _namespace = dict(vars(_wp))
    exec(compile(_source.replace(_OLD, _NEW), _wp.__file__, "exec"), _namespace)
    _wp.RequestHandler.start = _namespace["start"]  # type: ignore[method-assign]
else:
    print(
        "no_request_task: aiohttp's RequestHandler.start differs; nothing patched", file=sys.stderr
    )
