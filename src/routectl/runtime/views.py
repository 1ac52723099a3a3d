"""JSON views of the table for the read-only API: /v1/models and the collections endpoints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routectl.runtime.access import visible_collections
from routectl.runtime.auth import Caller
from routectl.runtime.index import TableIndex
from routectl.runtime.state import RoutingState
from routectl.table import Collection

__all__ = [
    "anthropic_model",
    "anthropic_models_page",
    "collection_detail",
    "collection_summary",
    "models_list",
]


def models_list(index: TableIndex, caller: Caller, created: int = 0) -> dict[str, Any]:
    """OpenAI list format: model ids, `collection/NAME` and aliases the caller may use.

    `created` is when the table was loaded: OpenAI's clients read it as a timestamp, and the
    table knows no release dates."""
    table = index.table
    data: dict[str, dict[str, Any]] = {}

    def add(ident: str, owned_by: str) -> None:
        entry = {"id": ident, "object": "model", "created": created, "owned_by": owned_by}
        data.setdefault(ident, entry)

    for model_id, model in sorted(table.models.items()):
        if index.connections_for(caller, model_id, None):
            add(model_id, model.provider)
    visible = visible_collections(table, caller)
    names = {c.name for c in visible}
    for c in visible:
        add(f"collection/{c.name}", "routectl")
    for alias, target in sorted(table.aliases.items()):
        if target in names:
            add(alias, "routectl")
    return {"object": "list", "data": list(data.values())}


def collection_summary(c: Collection) -> dict[str, Any]:
    """One collection without its members' live state."""
    return {
        "id": c.name,
        "name": c.name,
        "collection_name": c.name,  # the seed documents' (and the database's) name for it
        "model_id": f"collection/{c.name}",
        "display_name": c.display_name,
        "description": c.description,
        "scope": c.scope,
        "owner": c.owner,
        "routing_strategy": c.strategy,
        "aliases": list(c.aliases),
        "is_system_collection": c.scope == "system",
        "member_count": len(c.members),
        "max_attempts": c.max_attempts,
        "timeout_ms": c.timeout_ms,
        # status codes as numbers, as routing.yaml and a request's `retry.on_codes` write them
        "fallback_on": [int(x) if x.isdigit() else x for x in c.fallback_on],
        "metadata": c.metadata,
    }


def collection_detail(
    index: TableIndex, state: RoutingState, caller: Caller, c: Collection, now: float
) -> dict[str, Any]:
    """A collection with its `models`: member, weight, priority, active, live usage and health."""
    route = index.collection_routes[c.name]
    usage = state.usage.get(route.key, {})
    models: list[dict[str, Any]] = []
    for m in route.members:
        conns = []
        for conn in index.connections_for(caller, m.model_id, m.handle):
            why = state.unavailable.get(conn.id)
            cooldown = state.cooldown_of(conn.id, m.model_id, now)
            if why is None and cooldown is not None:
                why = cooldown.describe()
            avg = state.deployment_latency.get((conn.id, m.model_id))
            conns.append(
                {
                    "id": conn.id,
                    "available": why is None,
                    "reason": why,
                    "recent_failures": state.recent_failures(conn.id, m.model_id, now),
                    "latency_ms": round(avg * 1000, 3) if avg is not None else None,
                }
            )
        if not m.active:
            reason: str | None = "inactive"
        elif not conns:
            reason = "no connection you may use"
        elif not any(x["available"] for x in conns):
            reason = "; ".join(dict.fromkeys(str(x["reason"]) for x in conns))
        else:
            reason = None
        # the latency of the deployments this caller may use, never the model's average over
        # every deployment (which would show other users' private connections)
        seen = [x["latency_ms"] for x in conns if isinstance(x["latency_ms"], float)]
        latency_ms = round(sum(seen) / len(seen), 3) if seen else None
        models.append(
            {
                "model": m.model,
                "model_id": m.model_id,
                "provider": m.info.provider if m.info else m.model_id.partition("/")[0],
                "model_name": m.info.name if m.info else m.model_id.partition("/")[2],
                "handle": m.handle,
                "weight": m.weight,
                "priority": m.priority,
                "active": m.active,
                "is_active": m.active,  # the seed documents' (and the database's) name
                "tags": list(c.members[m.position].tags),
                "normalized_weight": c.members[m.position].normalized_weight,
                "usage": usage.get(m.key, 0),
                "health": {
                    "available": reason is None,
                    "reason": reason,
                    "latency_ms": latency_ms,
                    "connections": conns,
                },
            }
        )
    detail = collection_summary(c)
    detail["models"] = models
    return detail


_EPOCH = "1970-01-01T00:00:00Z"  # Anthropic's own value for an unknown release date
_MAX_PAGE = 1000


def anthropic_model(index: TableIndex, ident: str) -> dict[str, Any]:
    """One name of the models list in Anthropic's `ModelInfo` shape."""
    table = index.table
    entry: dict[str, Any] = {
        "type": "model",
        "id": ident,
        "display_name": ident,
        "created_at": _EPOCH,
        "lifecycle": "active",
    }
    model = table.models.get(ident)
    if model is not None:
        entry["max_input_tokens"] = model.context_window
        entry["max_tokens"] = model.max_output_tokens
    elif ident.startswith("collection/"):
        found = table.collections.get(ident[len("collection/") :])
        if found is not None and found.display_name:
            entry["display_name"] = found.display_name
    return entry


def anthropic_models_page(
    index: TableIndex, caller: Caller, query: Mapping[str, str]
) -> dict[str, Any]:
    """`GET /v1/models` in Anthropic's format: the same names as the OpenAI list, paged by
    `limit` (default 20, at most 1000), `after_id` or `before_id` as Anthropic's API pages."""
    ids = [m["id"] for m in models_list(index, caller)["data"]]
    try:
        limit = min(max(int(query.get("limit", "20")), 1), _MAX_PAGE)
    except ValueError:
        limit = 20
    start, end = 0, len(ids)
    if "after_id" in query:
        start = ids.index(query["after_id"]) + 1 if query["after_id"] in ids else len(ids)
    elif "before_id" in query:
        end = ids.index(query["before_id"]) if query["before_id"] in ids else 0
        start = max(0, end - limit)
    page = ids[start : min(end, start + limit)]
    has_more = (start > 0) if "before_id" in query else (start + len(page) < end)
    return {
        "data": [anthropic_model(index, i) for i in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
