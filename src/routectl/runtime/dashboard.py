"""`GET /dashboard`: a read-only page of where traffic goes, what is healthy and what it costs.

The page itself (static HTML and plain JavaScript, shipped in runtime/static/, no CDN) holds no
data, so it is served to anyone. Its data comes from `GET /dashboard/data`, which authenticates
like every API route (a bearer key, 401 `invalid_api_key` otherwise) and shows exactly the
collections the collections API shows that caller. A browser sends no Authorization header when
it navigates, so the page asks for the key once and sends it with each fetch; it keeps it in the
tab's sessionStorage (gone when the tab closes), never in a cookie or the URL.

Figures are this process's: the routing state (health, latency averages) and the usage window
(runtime/usage.py: 10-second buckets over 15 minutes).
"""

from __future__ import annotations

import time
from importlib.resources import files
from typing import Any

import orjson
from aiohttp import web

from routectl.runtime.access import visible_collections
from routectl.runtime.auth import Caller
from routectl.runtime.handlers import caller_of
from routectl.runtime.keys import RUNTIME, SERVED
from routectl.runtime.served import ServedTable
from routectl.runtime.shares import expected_shares, member_key
from routectl.runtime.state import RoutingState
from routectl.runtime.usage import BUCKET_S, WINDOW_BUCKETS, Cell, Usage
from routectl.runtime.views import collection_detail
from routectl.table import Collection

__all__ = ["dashboard_data", "dashboard_page", "dashboard_script", "dashboard_view"]

_STATIC = files("routectl.runtime").joinpath("static")
# the page loads only its own script and talks only to its own origin
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _cell_json(start: int, cell: Cell) -> dict[str, Any]:
    return {
        "t": start,
        "requests": cell.requests,
        "errors": cell.errors,
        "cost": round(cell.cost, 8),
        "tokens": cell.tokens,
        "latency_ms": round(cell.latency_ms / cell.requests, 3) if cell.requests else None,
    }


def _health(model: dict[str, Any], state: RoutingState, now: float) -> dict[str, Any]:
    """ok | cooling_down (until) | failing (recent failures) | unavailable | inactive."""
    health = model["health"]
    conns = health["connections"]
    if not model["active"]:
        return {"state": "inactive", "reason": "inactive"}
    if not health["available"]:
        untils = [
            cooldown.until
            for c in conns
            if (cooldown := state.cooldown_of(c["id"], model["model_id"], now)) is not None
        ]
        if untils:
            return {"state": "cooling_down", "until": min(untils), "reason": health["reason"]}
        return {"state": "unavailable", "reason": health["reason"]}
    failures = sum(c["recent_failures"] for c in conns)
    if failures:
        return {"state": "failing", "recent_failures": failures, "reason": None}
    return {"state": "ok", "reason": None}


def _collection(
    served: ServedTable,
    state: RoutingState,
    usage: Usage,
    caller: Caller,
    c: Collection,
    now: float,
    wall: float,
) -> dict[str, Any]:
    detail = collection_detail(served.index, state, caller, c, now)
    route = served.index.collection_routes[c.name]
    shares, basis = expected_shares(served.table, c)
    series = usage.series(c.name, wall)
    answered: dict[str, int] = {}
    for _, cell in series:
        for model, n in cell.by_model.items():
            answered[model] = answered.get(model, 0) + n
    total = sum(answered.values())
    members = []
    for rm, model in zip(route.members, detail["models"], strict=True):
        key = member_key(c, c.members[rm.position])
        n = answered.get(model["model_id"], 0)
        members.append(
            {
                "model": model["model"],
                "model_id": model["model_id"],
                "weight": model["weight"],
                "priority": model["priority"],
                "active": model["active"],
                "configured_share": round(shares.get(key, 0.0), 6),
                "observed_share": round(n / total, 6) if total else None,
                "requests": n,
                "latency_ms": model["health"]["latency_ms"],
                "health": _health(model, state, now),
            }
        )
    return {
        "name": c.name,
        "display_name": c.display_name,
        "scope": c.scope,
        "owner": c.owner,
        "strategy": c.strategy,
        "share_basis": basis,
        "members": members,
        "series": [_cell_json(start, cell) for start, cell in series],
    }


def dashboard_view(
    served: ServedTable, state: RoutingState, usage: Usage, caller: Caller, wall: float
) -> dict[str, Any]:
    """What the page shows `caller`: the collections it may see, their members' configured and
    observed shares and health, and the usage window; the table and its age."""
    now = state.clock()
    collections = [
        _collection(served, state, usage, caller, c, now, wall)
        for c in visible_collections(served.table, caller)
    ]
    totals = []
    for i in range(WINDOW_BUCKETS):
        cells = [c["series"][i] for c in collections]
        requests = sum(x["requests"] for x in cells)
        latency = sum((x["latency_ms"] or 0) * x["requests"] for x in cells)
        totals.append(
            {
                "t": cells[0]["t"] if cells else 0,
                "requests": requests,
                "errors": sum(x["errors"] for x in cells),
                "cost": round(sum(x["cost"] for x in cells), 8),
                "tokens": sum(x["tokens"] for x in cells),
                "latency_ms": round(latency / requests, 3) if requests else None,
            }
        )
    return {
        "caller": caller.handle,
        "now": wall,
        "table": {
            "sha256": served.sha,
            "loaded_at": served.loaded_at,
            "age_s": round(now - served.loaded_at, 3),  # both by the routing state's clock
        },
        "bucket_s": BUCKET_S,
        "window_s": BUCKET_S * WINDOW_BUCKETS,
        "collections": collections,
        "totals": totals,
    }


async def dashboard_page(request: web.Request) -> web.StreamResponse:
    """GET /dashboard: the page (no data in it)."""
    body = _STATIC.joinpath("dashboard.html").read_bytes()
    return web.Response(body=body, content_type="text/html", charset="utf-8", headers=_PAGE_HEADERS)


async def dashboard_script(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/dashboard.js."""
    body = _STATIC.joinpath("dashboard.js").read_bytes()
    return web.Response(
        body=body, content_type="text/javascript", charset="utf-8", headers=_PAGE_HEADERS
    )


async def dashboard_data(request: web.Request) -> web.StreamResponse:
    """GET /dashboard/data: the figures, for the authenticated caller only."""
    rt = request.app[RUNTIME]
    caller = caller_of(request)
    data = dashboard_view(request[SERVED], rt.state, rt.usage, caller, time.time())
    return web.Response(
        body=orjson.dumps(data),
        content_type="application/json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )
