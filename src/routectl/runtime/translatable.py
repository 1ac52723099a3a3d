"""Candidates a request cannot be translated for are left out of its plan.

A request in a client format goes as sent to an upstream whose dialect speaks that format, and
translated to OpenAI chat for any other. What has no faithful translation (an Anthropic server
tool, a document by URL...) can still be served by a member of the client's own dialect: such a
request skips the other members instead of failing on them, and is refused (400, the
translation's reason) only when no candidate is left.
"""

from __future__ import annotations

from dataclasses import replace

from routectl.runtime.errors import RoutingError
from routectl.runtime.plan import RoutePlan
from routectl.runtime.request import Call
from routectl.runtime.served import ServedTable

__all__ = ["translatable"]


def translatable(plan: RoutePlan, call: Call, served: ServedTable) -> RoutePlan:
    """`plan` without the candidates `call` cannot be translated for (raises when none is left)."""
    dialects = served.dialects
    name = call.format.name
    native = served.native
    # a loop, not all() over a generator: no generator frame to resume per candidate; the
    # dialects' answers read from the table's cache inline (a call only on a miss)
    for c in plan.candidates:
        ok = native.get((c.connection_id, c.model_id, name))
        if ok is None:
            ok = served.native_for(c, name)
        if not ok:
            break
    else:
        return plan  # every candidate takes the request as sent
    try:
        call.chat_body()  # translated once, kept on the call for the attempts that need it
    except RoutingError:
        kept = tuple(
            c for c in plan.candidates if dialects[c.connection_id].native_for(name, c.member.info)
        )
        if not kept:
            raise
        return replace(plan, candidates=kept)
    return plan
