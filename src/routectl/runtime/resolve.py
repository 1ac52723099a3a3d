"""Model-name resolution: a request's `model` -> the Route it names and the rule that matched. Pure.

The SPEC's order: 1. an exact system-collection name or alias; `auto(x)` means the system
collection `auto-x`; 2. `collection/NAME`; 3. `HANDLE/provider/model`; 4. `provider/model`;
5. anything else is 404 `model_not_found`. `route_for` is the one place a request's route is built
(the chat handler, explain and simulate all call it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

from routectl.runtime.access import may_see_collection
from routectl.runtime.auth import Caller
from routectl.runtime.errors import RoutingError
from routectl.runtime.index import TableIndex
from routectl.runtime.routes import (
    Overrides,
    Route,
    RouteMember,
    load_balancer_route,
    route_member,
    with_overrides,
)

__all__ = ["Resolution", "Rule", "resolve", "resolve_load_balancer", "route_for"]

# which rule of the SPEC's resolution order matched (explain reports it)
Rule = Literal["alias", "auto", "collection", "handle", "model", "load_balancer"]


class Resolution(NamedTuple):
    """A resolved name: the route and the rule that matched."""

    route: Route
    rule: Rule


def resolve(index: TableIndex, caller: Caller, model_name: str) -> Resolution:
    """Resolve a request's `model` field in the SPEC's order; raise RoutingError (403/404)."""
    found = index.resolved(caller, model_name)
    if found is None:
        found = _resolve(index, caller, model_name)  # raises for names that do not resolve
        index.remember(caller, model_name, found)
    return found


def _collection(index: TableIndex, caller: Caller, name: str, requested: str) -> Route:
    c = index.table.collections.get(name)
    # another user's user-scoped collection answers exactly like a missing one
    if c is None or (c.scope == "user" and not may_see_collection(caller, c)):
        raise RoutingError(
            "collection_not_found",
            404,
            # the name as the seed's error shows it: `flash2.5`, not `collection/flash2.5`
            f"Collection '{requested.removeprefix('collection/')}' not found or access denied",
        )
    if not may_see_collection(caller, c):
        raise RoutingError(
            "access_denied",
            403,
            f"Your organization does not have access to {c.name} collection",
            {"required_scope": "organization", "user_scope": caller.scope},
        )
    return index.collection_routes[name]


def _required_scope(index: TableIndex, owner: str) -> str:
    return "organization" if owner in index.table.organizations else "user"


def _resolve(index: TableIndex, caller: Caller, model_name: str) -> Resolution:
    table = index.table
    # 1. exact system-collection name or alias; auto(x) means the system collection auto-x
    target = table.aliases.get(model_name)
    if target is not None:
        return Resolution(_collection(index, caller, target, model_name), "alias")
    if model_name.startswith("auto(") and model_name.endswith(")"):
        target = table.aliases.get("auto-" + model_name[5:-1])
        if target is None:
            raise RoutingError(
                "collection_not_found", 404, f"Collection '{model_name}' not found or access denied"
            )
        return Resolution(_collection(index, caller, target, model_name), "auto")
    # 2. collection/NAME
    if model_name.startswith("collection/"):
        name = model_name[11:]
        route = _collection(index, caller, table.aliases.get(name, name), model_name)
        return Resolution(route, "collection")
    # 3. HANDLE/provider/model (a handle never equals a provider name, so this is unambiguous)
    head, sep, rest = model_name.partition("/")
    if sep and head in index.handles and rest in table.models:
        if head not in caller.owners:
            raise RoutingError(
                "access_denied",
                403,
                f"You may not use the connections of '{head}'",
                {"required_scope": _required_scope(index, head), "user_scope": caller.scope},
            )
        if not index.connections_for(caller, rest, head):
            raise RoutingError(
                "model_not_found", 404, f"'{head}' has no connection serving '{rest}'"
            )
        return Resolution(index.single_route("handle", model_name, rest, head), "handle")
    # 4. provider/model
    if model_name in table.models:
        if not index.connections_for(caller, model_name, None):
            owners = [
                table.connections[cid].owner for cid in table.model_connections.get(model_name, ())
            ]
            raise RoutingError(
                "access_denied",
                403,
                f"You may use no connection serving '{model_name}'",
                {
                    "required_scope": _required_scope(index, owners[0]) if owners else "platform",
                    "user_scope": caller.scope,
                },
            )
        return Resolution(index.single_route("model", model_name, model_name, None), "model")
    raise RoutingError("model_not_found", 404, f"Model '{model_name}' not found")


def resolve_load_balancer(
    index: TableIndex, caller: Caller, entries: Sequence[tuple[str, float]]
) -> Route:
    """The Route of a request-level `load_balancer` (weight_based): a smooth-WRR route over its models.

    Every entry must name a model (`provider/model` or `HANDLE/provider/model`) the caller may use;
    the first error of `resolve` is raised. The request's own `model` field is ignored, as in
    other routers' weight-based load balancers; attempts, fallback_on and timeout come from `defaults`.
    """
    members: list[RouteMember] = []
    for position, (name, weight) in enumerate(entries):
        single = resolve(index, caller, name).route
        if single.kind not in ("model", "handle"):
            raise RoutingError(
                "invalid_request",
                400,
                f"load_balancer.models[{position}].model must name a model, not a collection",
            )
        m = single.members[0]
        members.append(
            route_member(
                index.table, position, name, m.model_id, m.handle, weight, declared_index=position
            )
        )
    return load_balancer_route(index.table, tuple(members))


def route_for(
    index: TableIndex,
    caller: Caller,
    model: str,
    load_balancer: Sequence[tuple[str, float]] | None = None,
    overrides: Overrides | None = None,
) -> Resolution:
    """The route of one request: its `load_balancer` when it has one, else its `model`, with its
    `retry`/`timeout` overrides applied."""
    if load_balancer is not None:
        found = Resolution(resolve_load_balancer(index, caller, load_balancer), "load_balancer")
    else:
        found = resolve(index, caller, model)
    if overrides is None:
        return found
    return Resolution(with_overrides(found.route, overrides), found.rule)
