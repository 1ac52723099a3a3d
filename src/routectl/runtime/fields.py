"""The `_...` metadata fields of a routed answer (SPEC's Responses table). Pure."""

from __future__ import annotations

from typing import Any

from routectl.runtime.plan import Candidate, RoutePlan
from routectl.runtime.routes import Route

__all__ = ["TABLE_FIELD", "route_fields", "routing_fields"]

TABLE_FIELD = "_routing_table"  # always the last field


def route_fields(route: Route, model_id: str) -> dict[str, Any]:
    """The fields that depend on the route and the model alone: the first of every answer's."""
    fields: dict[str, Any] = {}
    if route.kind == "collection":
        fields["_collection_routed"] = True
        fields["_collection_name"] = route.collection.name if route.collection else ""
        fields["_routing_strategy"] = route.strategy
    fields["_selected_model"] = model_id
    return fields


def routing_fields(
    route: Route, plan: RoutePlan, used: Candidate, first: Candidate, reason: str | None, sha: str
) -> dict[str, Any]:
    """The `_...` metadata fields of a routed response (SPEC's Responses table): the route's,
    the strategy's, a fallback's, then the table's."""
    fields = route_fields(route, used.model_id)
    if plan.info:
        fields.update(plan.info)
        if used is not first and "_model_alternatives" in plan.info:
            fields.update(_usage_of_used(plan.info, first.model_id, used.model_id))
    if used is not first:
        fields["_fallback_used"] = True
        fields["_fallback_reason"] = reason
        fields["_original_selection"] = first.model_id
    fields[TABLE_FIELD] = sha
    return fields


def _usage_of_used(info: dict[str, Any], first: str, used: str) -> dict[str, Any]:
    """least_used's fields re-centred on the member that answered after a fallback: its usage at
    selection, and every other member (the original selection included) as an alternative."""
    everyone = [
        {"model": first, "usage": info["_usage_at_selection"]},
        *info["_model_alternatives"],
    ]
    at = next((i for i, alt in enumerate(everyone) if alt["model"] == used), None)
    if at is None:  # a member outside the strategy's pool (it lacked a wanted capability)
        return {}
    chosen = everyone.pop(at)
    return {"_usage_at_selection": chosen["usage"], "_model_alternatives": everyone}
