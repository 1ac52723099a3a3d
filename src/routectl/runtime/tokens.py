"""`POST /v1/messages/count_tokens`: the upstream's own count when the request would go to a
member whose dialect counts natively (Anthropic), else the gateway's estimate.

Counting is a question, not a request: the plan is a peek (no strategy state moves), no health is
booked, and an upstream that cannot answer (429, 5xx, timeout) gives way to the estimate.
`x-routectl-token-count: upstream | estimate` says which one answered.
"""

from __future__ import annotations

import aiohttp
import orjson
from aiohttp import web

from routectl.runtime.dialects import Attempt
from routectl.runtime.plan import Candidate, RoutePlan
from routectl.runtime.replies import AUTH_STATUSES, TooLarge, is_redirect, read_limited
from routectl.runtime.request import Call
from routectl.runtime.served import Runtime, ServedTable

__all__ = ["count_tokens", "native_first"]

_SOURCE = "x-routectl-token-count"


def native_first(served: ServedTable, plan: RoutePlan, call: Call) -> Candidate | None:
    """The request's first candidate when its dialect speaks the client's format, else None."""
    if not plan.candidates:
        return None
    first = plan.candidates[0]
    return first if served.dialects[first.connection_id].native == call.format.name else None


async def _upstream(
    rt: Runtime, served: ServedTable, cand: Candidate, call: Call, rid: str, timeout_ms: int
) -> web.Response | None:
    """The upstream's answer, or None when it could not give one (the estimate answers)."""
    session = rt.session
    assert session is not None, "the app's ClientSession is opened in cleanup_ctx"
    dialect = served.dialects[cand.connection_id]
    attempt = Attempt(
        call.body,
        True,
        False,
        cand.model_id,
        cand.upstream_model,
        cand.member.info,
        rid,
        call.facts.prompt_tokens,
        call.raw,
        call.headers,
    )
    sent = dialect.count_tokens(
        session, served.endpoints[cand.connection_id], attempt, served.timeout(timeout_ms)
    )
    if sent is None:
        return None
    try:
        reply = await sent
        try:
            # a redirect or a refused key is the gateway's problem: answer with the estimate
            if is_redirect(reply.status) or reply.status in AUTH_STATUSES:
                return None
            body = await read_limited(reply, rt.max_response_bytes)
        finally:
            reply.release()
    except (TimeoutError, aiohttp.ClientError, TooLarge):
        return None
    if reply.status == 429 or reply.status >= 500:
        return None
    headers = dict(served.chosen_headers(cand.connection_id, cand.model_id))
    headers[_SOURCE] = "upstream"
    # a 4xx is about the request itself: the client gets it as Anthropic said it
    return web.Response(status=reply.status, body=body, headers=headers)


async def count_tokens(
    rt: Runtime, served: ServedTable, plan: RoutePlan, call: Call, rid: str
) -> web.StreamResponse:
    """The count for `call`: forwarded to its first candidate if that one counts natively."""
    cand = native_first(served, plan, call)
    if cand is not None:
        answered = await _upstream(rt, served, cand, call, rid, plan.route.timeout_ms)
        if answered is not None:
            return answered
    body = orjson.dumps({"input_tokens": call.facts.prompt_tokens})
    return web.Response(body=body, content_type="application/json", headers={_SOURCE: "estimate"})
