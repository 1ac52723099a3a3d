"""Route: what a `model` name named, and the members a strategy chooses among. Pure data.

Built from the table once per collection or model name (`TableIndex` caches them) and, for a
request-level load balancer, per request; a request's `retry` and `timeout` give a copy
(`with_overrides`) that shares the members, so per-route caches keyed by them stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from routectl.table import Collection, Model, RoutingTable

__all__ = [
    "Overrides",
    "Route",
    "RouteKind",
    "RouteMember",
    "collection_route",
    "load_balancer_route",
    "route_member",
    "single_route",
    "with_overrides",
]

RouteKind = Literal["collection", "handle", "model", "load_balancer"]

# Weights are written with up to 6 decimals in practice; smooth WRR's sequence does not change
# when every weight is scaled by the same factor, so 0.7/0.3 still splits 7/3 in every 10.
_WEIGHT_SCALE = 1_000_000


@dataclass(frozen=True, slots=True)
class RouteMember:
    """One thing a route may pick: a model, optionally pinned to one handle's connections."""

    key: str  # the state key within its route: the model as written
    model: str  # as written: "provider/model" or "handle/provider/model"
    model_id: str
    handle: str | None
    weight: float
    int_weight: int  # weight * 1,000,000: smooth WRR splits exactly with integers
    priority: int
    active: bool
    declared_index: int
    position: int  # index in Route.members
    info: Model | None
    cost: float
    trust_level: int
    capabilities: frozenset[str]
    # least_used tie-break: higher trust, then lower cost (then member order)
    tie: tuple[int, float]


@dataclass(frozen=True, slots=True)
class Route:
    """What a `model` name named, and the members a strategy chooses among."""

    kind: RouteKind
    requested: str
    key: str  # the state key of the route (cursors, weights, usage counters)
    strategy: str  # as written in routing.yaml ("fallback" stays "fallback")
    members: tuple[RouteMember, ...]
    max_attempts: int
    fallback_on: frozenset[str]
    timeout_ms: int
    collection: Collection | None = None
    positions: Mapping[str, int] = field(default_factory=dict)  # member key -> position


@dataclass(frozen=True, slots=True)
class Overrides:
    """A request's own `retry` and `timeout` (routectl's keys, removed before forwarding)."""

    retry_count: int | None = None
    retry_on: frozenset[str] | None = None  # HTTP statuses as strings, like fallback_on
    call_timeout_ms: int | None = None


def route_member(
    table: RoutingTable,
    position: int,
    model: str,
    model_id: str,
    handle: str | None,
    weight: float,
    priority: int = 0,
    active: bool = True,
    declared_index: int = 0,
) -> RouteMember:
    """A member with everything strategies read precomputed from the table."""
    info = table.models.get(model_id)
    return RouteMember(
        key=model,
        model=model,
        model_id=model_id,
        handle=handle,
        weight=weight,
        int_weight=max(1, round(weight * _WEIGHT_SCALE)),
        priority=priority,
        active=active,
        declared_index=declared_index,
        position=position,
        info=info,
        cost=info.cost if info else 0.0,
        trust_level=info.trust_level if info else 0,
        capabilities=frozenset(info.capabilities) if info else frozenset(),
        tie=(-(info.trust_level if info else 0), info.cost if info else 0.0),
    )


def collection_route(table: RoutingTable, c: Collection) -> Route:
    """The route of a collection: its members in table order, its strategy and settings."""
    members = tuple(
        route_member(
            table,
            i,
            m.model,
            m.model_id,
            m.handle,
            m.weight,
            m.priority,
            m.active,
            m.declared_index,
        )
        for i, m in enumerate(c.members)
    )
    return Route(
        kind="collection",
        requested=f"collection/{c.name}",
        key=f"collection:{c.name}",
        strategy=c.strategy,
        members=members,
        max_attempts=c.max_attempts,
        fallback_on=frozenset(c.fallback_on),
        timeout_ms=c.timeout_ms,
        collection=c,
        positions={m.key: m.position for m in members},
    )


def single_route(
    table: RoutingTable, kind: RouteKind, requested: str, model_id: str, handle: str | None
) -> Route:
    """The route of one model (`provider/model`, or `HANDLE/provider/model` when pinned)."""
    d = table.defaults
    member = route_member(table, 0, requested, model_id, handle, 1.0)
    return Route(
        kind=kind,
        requested=requested,
        key=f"{kind}:{requested}",
        strategy="priority",
        members=(member,),
        max_attempts=d.max_attempts,
        fallback_on=frozenset(d.fallback_on),
        timeout_ms=d.timeout_ms,
        positions={member.key: 0},
    )


def load_balancer_route(table: RoutingTable, members: tuple[RouteMember, ...]) -> Route:
    """A request-level `load_balancer`: smooth WRR over its models, settings from `defaults`."""
    d = table.defaults
    return Route(
        kind="load_balancer",
        requested="load_balancer",
        key="lb:" + "\x00".join(m.model for m in members),
        strategy="weighted",
        members=members,
        max_attempts=d.max_attempts,
        fallback_on=frozenset(d.fallback_on),
        timeout_ms=d.timeout_ms,
        positions={m.key: m.position for m in members},
    )


def with_overrides(route: Route, overrides: Overrides | None) -> Route:
    """The route with a request's `retry` and `timeout` applied (the same object when absent)."""
    if overrides is None:
        return route
    changes: dict[str, Any] = {}
    if overrides.retry_count is not None:
        changes["max_attempts"] = overrides.retry_count + 1
        if overrides.retry_on is not None:
            transport = route.fallback_on & {"timeout", "connect_error"}
            changes["fallback_on"] = overrides.retry_on | transport
    if overrides.call_timeout_ms is not None:
        changes["timeout_ms"] = overrides.call_timeout_ms
    return replace(route, **changes) if changes else route
