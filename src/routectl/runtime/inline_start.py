"""aiohttp's connection loop with each request's handler awaited in place, not in a task of its own.

aiohttp's `RequestHandler.start` serves a connection's requests one after the other, and on
CPython 3.11 runs each one's handler in a new task (`loop.create_task(self._handle_request(...))`,
"to copy context vars", aiohttp #3406) which it awaits at once: per request a task to make and
register, a turn of the event loop before the handler starts, and another for the connection's
task to wake up when the handler's ends. On CPython 3.12+ aiohttp starts that task eagerly.

`inline_start()` is aiohttp's own `start`, its source with that one statement replaced, compiled
in aiohttp's module namespace: every other line (keep-alive, lingering, pipelining, the error
handling) is the installed aiohttp's. The replacement yields one turn of the loop
(`asyncio.sleep(0)`, where the task's first step waited for its turn) and then awaits the
handler's coroutine in place: no task, no wake-up at its end. The yield is kept on purpose:
without it the handlers of a burst of new connections all ran in the turn that woke their
connections, and the tail of the first second after an idle spell grew (p99 at c=64 38-52 ms
against 14-27; docs/performance.md, issue 16, phase 3 evening): under load, requests already
being served go before a new one starts. It is taken only then: while no other handler of the
process runs (a lone client, an idle server) there is nobody to go first, and the turn would
cost a poll of the loop and a task step for nothing (`IN_FLIGHT` counts the running handlers).

What changes for a handler: it runs in the connection's task and context. Cancellation is the
same (a client that goes away cancels that task, `handler_cancellation`, and with it the
handler's current await, as it cancelled the awaited task before; `request.task` was the
connection's task already); context variables set by a handler would stay set for the
connection's next requests, and routectl sets none. When the statement is not found (another
aiohttp release), or on CPython 3.12+, aiohttp's `start` runs unchanged.
tests/runtime/test_inline_start.py serves requests through it.
"""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web_protocol

__all__ = ["IN_FLIGHT", "inline_start"]

# aiohttp 3.14's statement (the only place `start` makes a task), and what replaces it
_TASK_PER_REQUEST = """\
            coro = self._handle_request(request, start, request_handler)
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
                resp, reset = await task
"""
_YIELD = """\
            if _IN_FLIGHT[0]:  # another request is being served: its turn first (see above)
                await asyncio.sleep(0)  # the loop turn the task's first step took
"""
_AWAITED_IN_PLACE = """\
            coro = self._handle_request(request, start, request_handler)
            task = None  # (aiohttp's `del task` below)
            try:
                _IN_FLIGHT[0] += 1
                try:
                    resp, reset = await coro
                finally:
                    _IN_FLIGHT[0] -= 1
"""

# how many handlers of this process the rewritten loops are running (one event loop per process)
IN_FLIGHT = [0]


def inline_start(
    yield_first: bool = True,
) -> Callable[[web_protocol.RequestHandler], Coroutine[Any, Any, None]] | None:
    """aiohttp's `RequestHandler.start` with the handler awaited in place, after a turn of the
    loop when another request is being served (`yield_first=False`: never, the variant measured
    and not kept, which bench/experiments/no_request_task installs); None when the installed
    aiohttp's `start` does not hold the expected statement, or on CPython 3.12+."""
    if sys.version_info >= (3, 12):
        return None
    source = textwrap.dedent(inspect.getsource(web_protocol.RequestHandler.start))
    if source.count(_TASK_PER_REQUEST) != 1:
        return None
    namespace = dict(vars(web_protocol))
    namespace["_IN_FLIGHT"] = IN_FLIGHT
    code = compile(
        source.replace(_TASK_PER_REQUEST, (_YIELD if yield_first else "") + _AWAITED_IN_PLACE),
        web_protocol.__file__,
        "exec",
    )
    exec(code, namespace)  # aiohttp's own source, one statement changed (see above)
    start: Callable[[web_protocol.RequestHandler], Coroutine[Any, Any, None]] = namespace["start"]
    start.__qualname__ = "RequestHandler.start"
    return start
